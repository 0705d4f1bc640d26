import { ApiException, CoordinationV1Api, type KubeConfig, type V1Lease, V1MicroTime } from "@kubernetes/client-node";
import type { LeaderRecord } from "@qbo-webhooks/contracts";
import type { LeaderLock } from "./leader-lock.js";
import { PooledKubeConfig } from "./pooled-kube-config.js";

/** Leadership in a `coordination.k8s.io/v1` Lease, the way Kubernetes' own controllers elect. */
export class KubernetesLeaseLock implements LeaderLock {
  readonly description: string;
  readonly #api: CoordinationV1Api;

  /** `kubeConfig`: in a pod, the service account's (the default); tests pass one for their API server. */
  constructor(
    private readonly name: string,
    private readonly namespace: string,
    kubeConfig: KubeConfig = defaultKubeConfig(),
  ) {
    this.#api = kubeConfig.makeApiClient(CoordinationV1Api);
    this.description = `Kubernetes Lease ${namespace}/${name}`;
  }

  async read(): Promise<{ record: LeaderRecord; version: string } | undefined> {
    let lease: V1Lease;
    try {
      lease = await this.#api.readNamespacedLease({ name: this.name, namespace: this.namespace });
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return undefined;
      throw err;
    }
    const spec = lease.spec ?? {};
    return {
      record: {
        holder: spec.holderIdentity ?? "",
        leaseMs: (spec.leaseDurationSeconds ?? 0) * 1000,
        transitions: spec.leaseTransitions ?? 0,
      },
      version: lease.metadata?.resourceVersion ?? "",
    };
  }

  async write(record: LeaderRecord, version: string | undefined): Promise<string | undefined> {
    // Lease times are MicroTime (six fractional digits): the API server refuses a plain Date's
    // milliseconds with 400 (test/deploy's lease.test.ts, on a real kube-apiserver).
    const now = new V1MicroTime();
    const body: V1Lease = {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name: this.name, namespace: this.namespace, ...(version ? { resourceVersion: version } : {}) },
      spec: {
        holderIdentity: record.holder,
        leaseDurationSeconds: Math.max(1, Math.ceil(record.leaseMs / 1000)),
        leaseTransitions: record.transitions,
        renewTime: now,
        acquireTime: now,
      },
    };
    try {
      const written =
        version === undefined
          ? await this.#api.createNamespacedLease({ namespace: this.namespace, body })
          : await this.#api.replaceNamespacedLease({ name: this.name, namespace: this.namespace, body });
      return written.metadata?.resourceVersion;
    } catch (err) {
      // 409: someone wrote since we read (replace) or created it first (create).
      if (err instanceof ApiException && err.code === 409) return undefined;
      throw err;
    }
  }
}

/** In a pod, its service account's access; elsewhere, KUBECONFIG or ~/.kube/config. */
export function defaultKubeConfig(): KubeConfig {
  const config = new PooledKubeConfig();
  config.loadFromDefault();
  return config;
}
