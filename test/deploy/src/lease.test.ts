import { Agent } from "node:https";
import { fileURLToPath } from "node:url";
import { CoordinationV1Api, type KubeConfig } from "@kubernetes/client-node";
import { createLogger } from "@qbo-webhooks/observability";
import { PooledKubeConfig } from "@qbo-webhooks/reconciler/kube-config";
import { KubernetesLeaseLock, leaderLockContract } from "@qbo-webhooks/reconciler/testing/leader-lock-contract";
import { describe, expect, it, vi } from "vitest";
import { ControlPlane, k8sTools } from "./control-plane.js";

// The reconciler's leader election on a real kube-apiserver (which refuses what a stand-in accepted:
// Lease times with milliseconds instead of MicroTime), as the chart deploys it: the reconciler's own
// ServiceAccount, whose Role may create Leases and read and update only the one the chart names.
const CHART = fileURLToPath(new URL("../../../charts/qbo-webhooks", import.meta.url));
const NAMESPACE = "lease";
const tools = await k8sTools();
const logger = createLogger({ service: "lease-test", level: "silent" });

describe.skipIf(tools.missing !== undefined)(
  `the reconciler's Lease on a real kube-apiserver ${tools.missing ? `(skipped: ${tools.missing})` : ""}`,
  () => {
    leaderLockContract(
      "a real kube-apiserver, with the chart's reconciler ServiceAccount and Role",
      async () => {
        const plane = await ControlPlane.start(tools);
        const { account, config } = await plane.installAsReconciler(CHART, NAMESPACE);
        return {
          // The Role names one Lease (LEADER_LEASE_NAME): every test of the contract uses it.
          lock: async () => new KubernetesLeaseLock(account, NAMESPACE, config),
          close: () => plane.stop(),
        };
      },
      logger,
    );
  },
);

describe.skipIf(tools.missing !== undefined)(
  `the reconciler's Kubernetes client on a real kube-apiserver ${tools.missing ? `(skipped: ${tools.missing})` : ""}`,
  () => {
    it("kube - the reconciler's API requests share one keep-alive TLS connection (@kubernetes/client-node alone opens one per request)", async () => {
      const plane = await ControlPlane.start(tools);
      try {
        const { account, config } = await plane.installAsReconciler(CHART, "pool");
        /** TLS connections opened for 20 requests made one after another with `kubeConfig`. */
        const connectionsFor = async (kubeConfig: KubeConfig) => {
          const api = kubeConfig.makeApiClient(CoordinationV1Api);
          const opened = vi.spyOn(Agent.prototype, "createConnection");
          try {
            for (let i = 0; i < 20; i++) {
              // Answered (the Lease, or 404 before anyone leads) either way: what counts is the connection.
              await api.readNamespacedLease({ name: account, namespace: "pool" }).catch(() => undefined);
            }
            return opened.mock.calls.length;
          } finally {
            opened.mockRestore();
          }
        };
        const pooled = new PooledKubeConfig();
        pooled.loadFromString(config.exportConfig());
        expect(await connectionsFor(pooled)).toBe(1);
        expect(await connectionsFor(config)).toBe(20);
      } finally {
        await plane.stop();
      }
    }, 120_000);
  },
);
