import { fileURLToPath } from "node:url";
import { createLogger } from "@qbo-webhooks/observability";
import { KubernetesLeaseLock, leaderLockContract } from "@qbo-webhooks/reconciler/testing/leader-lock-contract";
import { describe } from "vitest";
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
