import { randomBytes } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import {
  ApiException,
  CustomObjectsApi,
  EventsV1Api,
  type Informer,
  type KubeConfig,
  type KubernetesObject,
  makeInformer,
  type ObjectCache,
  PatchStrategy,
  setHeaderOptions,
  V1MicroTime,
} from "@kubernetes/client-node";
import {
  type CompanyCondition,
  companyConditions,
  compareText,
  type EntityName,
  type RealmRecord,
  rfc3339,
} from "@qbo-webhooks/contracts";
import { forgetRealmData, type RealmFollower, type RealmRegistry } from "@qbo-webhooks/entity-store";
import type { NatsClient } from "@qbo-webhooks/messaging";
import type { Logger } from "@qbo-webhooks/observability";
import type { KvTokenSource } from "@qbo-webhooks/quickbooks";
import pLimit from "p-limit";
import pThrottle from "p-throttle";
import type { ReconcilerMetrics } from "../reconciler-metrics.js";
import {
  COMPANY_API,
  COMPANY_API_VERSION,
  COMPANY_FINALIZER,
  CompanyResource,
  type CompanyStatus,
  companyStatus,
  wantedEntities,
} from "./company-resource.js";

export interface OperatorSettings {
  /** The namespace whose QuickBooksCompany resources this reconciler manages (its own). */
  readonly namespace: string;
  readonly environment: "production" | "sandbox";
  /** The entity types of a resource that names none. */
  readonly entities: readonly EntityName[];
  /** Where operators reach `/connect` (shown in the status while consent is awaited). */
  readonly connectUrlBase: string;
  /** How long without a webhook counts as webhooks not flowing. */
  readonly silenceMs: number;
  /** Every resource is looked at again this often, whatever the watch said. */
  readonly resyncMs: number;
  /** A resource's status is written at most this often, unless a condition's status changes. */
  readonly statusMinIntervalMs: number;
  /** Status writes per second across all resources. */
  readonly statusWritesPerSecond: number;
}

export interface OperatorDeps {
  readonly kubeConfig: KubeConfig;
  readonly registry: RealmRegistry;
  readonly tokens: KvTokenSource;
  readonly client: NatsClient;
  readonly metrics: ReconcilerMetrics;
  readonly logger: Logger;
  readonly now: () => number;
  /** Named in the Events this replica reports. */
  readonly reconcilerId: string;
  /** Whether this replica still leads: checked right before each write (a paused leader wakes up deposed). */
  readonly stillLeader: () => boolean;
}

/** Resources reconciled at once. */
const RECONCILES_AT_ONCE = 8;
/** After a failure (the API server, QuickBooks' revocation), a resource is tried again this much later. */
const RETRY_MS = 5000;

/**
 * The leader's side of QuickBooksCompany resources (the chart's CRD): registers what operators
 * apply (awaiting consent until someone connects the company), mirrors each company's record into
 * the resource's status (conditions from `company-conditions`, written only on change, rate
 * limited, retried on a fresh read after a conflict), reports transitions as Events, creates a
 * resource for a company connected otherwise (`/connect`, the CLI), and on deletion revokes the
 * tokens and removes the record (and, as asked, the data) before letting the resource go.
 * Watch-driven (an informer, and the realm registry's watch), with a periodic resync.
 */
export class CompanyOperator {
  readonly #api: CustomObjectsApi;
  readonly #events: EventsV1Api;
  /** Keys waiting for a slot, keys being reconciled, and keys to reconcile again once their run ends. */
  readonly #queued = new Set<string>();
  readonly #inFlight = new Set<string>();
  readonly #again = new Set<string>();
  readonly #runs = new Set<Promise<void>>();
  readonly #slots = pLimit(RECONCILES_AT_ONCE);
  readonly #later = new Map<string, NodeJS.Timeout>();
  /** Resource names per realm id, as the informer last told. */
  readonly #namesByRealm = new Map<string, Set<string>>();
  readonly #lastWrite = new Map<string, number>();
  readonly #throttle: <T>(write: () => Promise<T>) => Promise<T>;
  #informer: (Informer<KubernetesObject> & ObjectCache<KubernetesObject>) | undefined;
  #realms: RealmFollower | undefined;
  #resync: NodeJS.Timeout | undefined;
  #running = false;

  constructor(
    private readonly deps: OperatorDeps,
    private readonly settings: OperatorSettings,
  ) {
    this.#api = deps.kubeConfig.makeApiClient(CustomObjectsApi);
    this.#events = deps.kubeConfig.makeApiClient(EventsV1Api);
    const throttled = pThrottle({ limit: settings.statusWritesPerSecond, interval: 1000 })(
      (write: () => Promise<unknown>) => write(),
    );
    this.#throttle = <T>(write: () => Promise<T>) => throttled(write) as Promise<T>;
  }

  /** Runs until `signal` aborts (leadership ended). */
  async start(signal: AbortSignal): Promise<void> {
    this.#running = true;
    signal.addEventListener("abort", () => void this.stop(), { once: true });
    const { group, version, plural } = COMPANY_API;
    const { namespace } = this.settings;
    const informer = makeInformer(
      this.deps.kubeConfig,
      `/apis/${group}/${version}/namespaces/${namespace}/${plural}`,
      () => this.#api.listNamespacedCustomObject({ group, version, namespace, plural }),
    );
    this.#informer = informer;
    const seen = (object: KubernetesObject) => {
      const parsed = CompanyResource.safeParse(object);
      if (!parsed.success) return;
      const { name } = parsed.data.metadata;
      const names = this.#namesByRealm.get(parsed.data.spec.realmId) ?? new Set();
      this.#namesByRealm.set(parsed.data.spec.realmId, names.add(name));
      this.#enqueue(name);
    };
    informer.on("add", seen);
    informer.on("update", seen);
    informer.on("delete", (object) => {
      const parsed = CompanyResource.safeParse(object);
      if (parsed.success) this.#namesByRealm.get(parsed.data.spec.realmId)?.delete(parsed.data.metadata.name);
    });
    informer.on("error", (err) => {
      this.deps.logger.warn({ err }, "QuickBooksCompany watch failed; restarting it");
      setTimeout(() => {
        if (this.#running) informer.start().catch(() => undefined);
      }, RETRY_MS).unref();
    });
    this.#realms = await this.deps.registry.follow((realmId) => {
      for (const name of this.#namesByRealm.get(realmId) ?? []) this.#enqueue(name);
      if (!this.#namesByRealm.get(realmId)?.size) this.#enqueue(adoptKey(realmId));
    });
    await informer.start();
    this.#resync = setInterval(() => this.#enqueueAll(), this.settings.resyncMs);
    this.#enqueueAll();
  }

  /** Stops watching; the reconcile under way finishes. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    clearInterval(this.#resync);
    for (const timer of this.#later.values()) clearTimeout(timer);
    this.#later.clear();
    this.#slots.clearQueue();
    this.#queued.clear();
    this.#again.clear();
    this.#realms?.stop();
    await this.#informer?.stop();
    await Promise.all(this.#runs);
  }

  #enqueueAll(): void {
    for (const object of this.#informer?.list() ?? []) if (object.metadata?.name) this.#enqueue(object.metadata.name);
    for (const { record } of this.#realms?.list() ?? []) this.#enqueue(adoptKey(record.realmId));
  }

  /** Reconciles the key soon: a few keys at once (the API server's answers take time), each key one run at a time. */
  #enqueue(key: string): void {
    if (!this.#running) return;
    if (this.#inFlight.has(key)) {
      this.#again.add(key);
      return;
    }
    if (this.#queued.has(key)) return;
    this.#queued.add(key);
    const run = this.#slots(() => this.#run(key));
    this.#runs.add(run);
    void run.finally(() => this.#runs.delete(run));
  }

  /** Reconciles the key again after `ms` (a rate limit, or a failure to retry). */
  #enqueueIn(key: string, ms: number): void {
    if (this.#later.has(key) || !this.#running) return;
    this.#later.set(
      key,
      setTimeout(() => {
        this.#later.delete(key);
        this.#enqueue(key);
      }, ms).unref(),
    );
  }

  async #run(key: string): Promise<void> {
    this.#queued.delete(key);
    if (!this.#running || !this.deps.stillLeader()) return;
    this.#inFlight.add(key);
    try {
      if (key.startsWith(ADOPT)) await this.#adopt(key.slice(ADOPT.length));
      else await this.#reconcile(key);
    } catch (err) {
      this.deps.logger.warn({ err, key }, "company reconcile failed; trying again");
      this.#enqueueIn(key, RETRY_MS);
    } finally {
      this.#inFlight.delete(key);
      if (this.#again.delete(key)) this.#enqueue(key);
    }
  }

  #cached(name: string): CompanyResource | undefined {
    const object = this.#informer?.get(name, this.settings.namespace);
    const parsed = CompanyResource.safeParse(object);
    if (object && !parsed.success)
      this.deps.logger.warn({ name, problem: parsed.error.message }, "QuickBooksCompany not understood; left alone");
    return parsed.success ? parsed.data : undefined;
  }

  async #reconcile(name: string): Promise<void> {
    let resource = this.#cached(name);
    if (!resource) return;
    if (resource.metadata.deletionTimestamp !== undefined) return this.#finalize(resource);
    if (!resource.metadata.finalizers?.includes(COMPANY_FINALIZER)) {
      resource = await this.#setFinalizers(resource, [...(resource.metadata.finalizers ?? []), COMPANY_FINALIZER]);
    }
    const refusal = this.#refusal(resource);
    if (refusal) return this.#writeStatus(resource, (current) => refusedStatus(current, refusal));
    const record = await this.#register(resource);
    await this.#writeStatus(resource, (current) => this.#statusFor(current, record));
  }

  /** Why the resource cannot stand for its company: another environment, or another resource names it first. */
  #refusal(resource: CompanyResource): { reason: string; message: string } | undefined {
    const { spec, metadata } = resource;
    if (spec.environment !== undefined && spec.environment !== this.settings.environment) {
      return {
        reason: "WrongEnvironment",
        message: `this reconciler serves ${this.settings.environment} companies, not ${spec.environment}`,
      };
    }
    const first = [...(this.#namesByRealm.get(spec.realmId) ?? [])]
      .map((name) => this.#cached(name))
      .filter((r): r is CompanyResource => r !== undefined && r.metadata.deletionTimestamp === undefined)
      .sort(
        (a, b) =>
          compareText(a.metadata.creationTimestamp ?? "", b.metadata.creationTimestamp ?? "") ||
          compareText(a.metadata.name, b.metadata.name),
      )[0];
    if (first && first.metadata.name !== metadata.name) {
      return { reason: "DuplicateRealm", message: `${first.metadata.name} already stands for realm ${spec.realmId}` };
    }
    return undefined;
  }

  /** @throws when this replica no longer leads: whatever it was about to write is the next leader's. */
  #mustLead(): void {
    if (!this.deps.stillLeader()) throw new Error("no longer leading");
  }

  /** Makes the company's record say what the resource asks: registered (awaiting consent if new), paused or not, its entity types. */
  async #register(resource: CompanyResource): Promise<RealmRecord> {
    const { spec } = resource;
    const entities = wantedEntities(spec, this.settings.entities);
    const matches = (r: RealmRecord) => (r.paused ?? false) === spec.paused && isDeepStrictEqual(r.entities, entities);
    const followed = this.#realms?.get(spec.realmId);
    if (followed && matches(followed)) return followed;
    this.#mustLead();
    const updated = await this.deps.registry.update(spec.realmId, (r) => {
      if (r) return matches(r) ? undefined : { ...r, paused: spec.paused, entities };
      return {
        realmId: spec.realmId,
        environment: this.settings.environment,
        entities,
        connectedAt: this.deps.now(),
        status: "awaiting_consent",
        paused: spec.paused,
      };
    });
    if (!updated) throw new Error(`realm ${spec.realmId} could not be registered`);
    if (!followed) this.deps.logger.info({ realmId: spec.realmId, name: resource.metadata.name }, "company registered");
    return updated;
  }

  #statusFor(resource: CompanyResource, record: RealmRecord): CompanyStatus {
    const conditions = companyConditions(record, resource.status?.conditions, {
      now: this.deps.now(),
      silenceMs: this.settings.silenceMs,
    });
    const connect = new URL("/connect", this.settings.connectUrlBase);
    connect.search = new URLSearchParams({ realmId: record.realmId, entities: record.entities.join(",") }).toString();
    return companyStatus(record, conditions, resource.metadata.generation, connect.toString());
  }

  /**
   * Writes the status `wanted` computes, if it differs from the resource's: at most once per
   * `statusMinIntervalMs` per resource unless a condition's status changed, within the global
   * rate; a conflict (409) computes it again from a fresh read. Reports transitions as Events.
   */
  async #writeStatus(resource: CompanyResource, wanted: (current: CompanyResource) => CompanyStatus): Promise<void> {
    const { name } = resource.metadata;
    let current = resource;
    for (let attempt = 1; ; attempt++) {
      const status = wanted(current);
      if (isDeepStrictEqual(status, current.status)) return;
      const flipped = !sameStatuses(current.status?.conditions, status.conditions);
      const since = performance.now() - (this.#lastWrite.get(name) ?? Number.NEGATIVE_INFINITY);
      if (!flipped && since < this.settings.statusMinIntervalMs) {
        this.deps.metrics.statusWrites.inc({ result: "deferred" });
        return this.#enqueueIn(name, this.settings.statusMinIntervalMs - since);
      }
      try {
        const { group, version, plural } = COMPANY_API;
        await this.#throttle(() => {
          this.#mustLead();
          return this.#api.replaceNamespacedCustomObjectStatus({
            group,
            version,
            plural,
            namespace: this.settings.namespace,
            name,
            body: { ...current, status },
          });
        });
        this.#lastWrite.set(name, performance.now());
        this.deps.metrics.statusWrites.inc({ result: "written" });
        await this.#reportTransitions(current, status);
        return;
      } catch (err) {
        if (!(err instanceof ApiException && err.code === 409) || attempt >= 5) throw err;
        this.deps.metrics.statusWrites.inc({ result: "conflict" });
        current = await this.#read(name);
      }
    }
  }

  async #read(name: string): Promise<CompanyResource> {
    const { group, version, plural } = COMPANY_API;
    return CompanyResource.parse(
      await this.#api.getNamespacedCustomObject({ group, version, plural, namespace: this.settings.namespace, name }),
    );
  }

  async #reportTransitions(before: CompanyResource, after: CompanyStatus): Promise<void> {
    const was = (type: CompanyCondition["type"]) => before.status?.conditions?.find((c) => c.type === type);
    const now = (type: CompanyCondition["type"]) => after.conditions?.find((c) => c.type === type);
    const connected = now("Connected");
    if (connected?.status === "True" && was("Connected")?.status !== "True")
      await this.#event(before, "Normal", "Connected", "the company consented; its changes are followed");
    if (connected?.status === "False" && connected.reason === "Disconnected" && was("Connected")?.status === "True")
      await this.#event(before, "Warning", "Disconnected", connected.message);
    const tokens = now("TokensValid");
    if (
      tokens?.status === "False" &&
      tokens.reason === "TokensRefused" &&
      was("TokensValid")?.reason !== "TokensRefused"
    )
      await this.#event(before, "Warning", "TokenRefused", tokens.message);
    const missed = (after.missedChanges ?? 0) - (before.status?.missedChanges ?? 0);
    if (before.status !== undefined && missed > 0)
      await this.#event(before, "Warning", "MissedChanges", `catch-up found ${missed} changes no webhook announced`);
    const paused = now("Ready")?.reason === "Paused";
    const wasPaused = was("Ready")?.reason === "Paused";
    if (paused !== wasPaused && before.status !== undefined)
      await this.#event(
        before,
        "Normal",
        paused ? "Paused" : "Resumed",
        paused ? "processing held" : "processing resumed, in order",
      );
  }

  /** One Event about the resource (events.k8s.io/v1); a failure to report is logged, never fatal. */
  async #event(resource: CompanyResource, type: "Normal" | "Warning", reason: string, note: string): Promise<void> {
    const { name, namespace, uid, resourceVersion } = resource.metadata;
    await this.#events
      .createNamespacedEvent({
        namespace,
        body: {
          // Named as Kubernetes' own recorders name events (a generateName ending in '.' is refused).
          metadata: { name: `${name}.${randomBytes(8).toString("hex")}`, namespace },
          eventTime: new V1MicroTime(),
          reportingController: "qbo-webhooks.io/reconciler",
          reportingInstance: this.deps.reconcilerId,
          action: "Reconcile",
          reason,
          note: note.slice(0, 1024),
          type,
          regarding: { apiVersion: COMPANY_API_VERSION, kind: COMPANY_API.kind, name, namespace, uid, resourceVersion },
        },
      })
      .catch((err: unknown) => this.deps.logger.warn({ err, name, reason }, "Event not recorded"));
  }

  /** Sets the resource's finalizers, on the version read (a conflict fails: the next reconcile reads again). */
  async #setFinalizers(resource: CompanyResource, finalizers: string[]): Promise<CompanyResource> {
    this.#mustLead();
    const { group, version, plural } = COMPANY_API;
    const patched = await this.#api.patchNamespacedCustomObject(
      {
        group,
        version,
        plural,
        namespace: this.settings.namespace,
        name: resource.metadata.name,
        body: { metadata: { finalizers, resourceVersion: resource.metadata.resourceVersion } },
      },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    return CompanyResource.parse(patched);
  }

  /**
   * A deleted resource: revokes the company's tokens at Intuit, forgets its record (and its data
   * with `deletionPolicy: Delete`), then lets the resource go. Each step is safe to repeat: a
   * leader that dies midway leaves the finalizer, and the next one finishes.
   */
  async #finalize(resource: CompanyResource): Promise<void> {
    const { metadata, spec } = resource;
    if (!metadata.finalizers?.includes(COMPANY_FINALIZER)) return;
    const others = [...(this.#namesByRealm.get(spec.realmId) ?? [])].filter(
      (name) => name !== metadata.name && this.#cached(name)?.metadata.deletionTimestamp === undefined,
    );
    // Another resource still stands for the company (this one was a duplicate): it keeps it.
    if (others.length === 0 && this.#refusal(resource)?.reason !== "WrongEnvironment") {
      try {
        this.#mustLead();
        await this.deps.tokens.revoke(spec.realmId);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        await this.#event(resource, "Warning", "RevokeFailed", `${message}; trying again`);
        throw err;
      }
      await this.deps.registry.remove(spec.realmId);
      const removed = spec.deletionPolicy === "Delete" ? await forgetRealmData(this.deps.client, spec.realmId) : 0;
      await this.#event(
        resource,
        "Normal",
        "Removed",
        spec.deletionPolicy === "Delete"
          ? `tokens revoked; the company's record and ${removed} stored entries removed`
          : "tokens revoked; the company's record removed, its copied data kept",
      );
      this.deps.logger.info({ realmId: spec.realmId, policy: spec.deletionPolicy, removed }, "company removed");
    }
    await this.#setFinalizers(
      resource,
      metadata.finalizers.filter((f) => f !== COMPANY_FINALIZER),
    );
  }

  /** A company in the registry without a resource (connected through `/connect` or the CLI) gets one. */
  async #adopt(realmId: string): Promise<void> {
    if (this.#namesByRealm.get(realmId)?.size) return;
    const record = this.#realms?.get(realmId);
    if (!record || record.status === "awaiting_consent") return;
    const { group, version, plural, kind } = COMPANY_API;
    const name = `realm-${realmId}`;
    try {
      this.#mustLead();
      await this.#api.createNamespacedCustomObject({
        group,
        version,
        plural,
        namespace: this.settings.namespace,
        body: {
          apiVersion: COMPANY_API_VERSION,
          kind,
          metadata: { name, namespace: this.settings.namespace, finalizers: [COMPANY_FINALIZER] },
          spec: { realmId, environment: record.environment, entities: record.entities, paused: record.paused ?? false },
        },
      });
      this.deps.logger.info({ realmId, name }, "QuickBooksCompany created for a company connected otherwise");
    } catch (err) {
      // Created meanwhile (the watch had not told yet): nothing to do.
      if (!(err instanceof ApiException && err.code === 409)) throw err;
    }
  }
}

/** Queue keys for "does this realm need a resource?", apart from resource names (which cannot contain ':'). */
const ADOPT = "adopt:";
const adoptKey = (realmId: string) => `${ADOPT}${realmId}`;

function sameStatuses(a: readonly CompanyCondition[] | undefined, b: readonly CompanyCondition[] | undefined): boolean {
  return isDeepStrictEqual(
    a?.map((c) => [c.type, c.status]),
    b?.map((c) => [c.type, c.status]),
  );
}

/** The status of a resource that cannot stand for its company: Ready false, saying why. */
function refusedStatus(resource: CompanyResource, refusal: { reason: string; message: string }): CompanyStatus {
  const generation = resource.metadata.generation;
  const before = resource.status?.conditions?.find((c) => c.type === "Ready");
  return {
    observedGeneration: generation,
    conditions: [
      {
        type: "Ready",
        status: "False",
        ...refusal,
        lastTransitionTime: before?.status === "False" ? before.lastTransitionTime : rfc3339(Date.now()),
        observedGeneration: generation,
      },
    ],
  };
}
