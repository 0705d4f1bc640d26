import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { ControlPlane, k8sTools } from "./control-plane.js";

// The chart on a cluster whose pods turn Ready: a real API server, controller manager and scheduler,
// and kwok's simulated nodes (no container runs, so this proves the objects' behaviour, not the program's:
// the image test starts the programs). Installed with helm 4 (chart.test.ts installs with helm 3).
const CHART = fileURLToPath(new URL("../../../charts/qbo-webhooks", import.meta.url));
const tools = await k8sTools();
const NAMESPACE = "rollout";
const SERVICES = ["ingress", "ordering", "processor", "reconciler"] as const;
const deployment = (service: string) => `qbo-qbo-webhooks-${service}`;
const VALUES = ["--set", "secrets.verifierTokens=v", "--set", "secrets.clientId=c", "--set", "secrets.clientSecret=s"];

const Deployment = z.object({
  metadata: z.object({ name: z.string() }),
  spec: z.object({ replicas: z.number() }),
  status: z.object({ availableReplicas: z.number().optional() }),
});
const Deployments = z.object({ items: z.array(Deployment) });
const Pods = z.object({
  items: z.array(
    z.object({
      metadata: z.object({
        name: z.string(),
        labels: z.record(z.string(), z.string()),
        deletionTimestamp: z.string().optional(),
      }),
      spec: z.object({ nodeName: z.string().optional() }),
      status: z.object({ phase: z.string() }),
    }),
  ),
});
const Budget = z.object({
  status: z.object({ currentHealthy: z.number(), desiredHealthy: z.number(), disruptionsAllowed: z.number() }),
});

describe.skipIf(tools.missing !== undefined)(
  `the chart on simulated nodes (kube-controller-manager, kube-scheduler, kwok) ${tools.missing ? `(skipped: ${tools.missing})` : ""}`,
  () => {
    let plane: ControlPlane;
    const json = async <T>(schema: z.ZodType<T>, args: string[]) =>
      schema.parse(JSON.parse(await plane.kubectl([...args, "-n", NAMESPACE, "-o", "json"])));
    const helm = (args: string[]) => plane.helm([...args, "--namespace", NAMESPACE, "--timeout", "3m"], 4);
    /** The service's pods, less those on their way out (Terminating until their grace period ends). */
    const podsOf = async (service: string) =>
      (await json(Pods, ["get", "pods", "-l", `app.kubernetes.io/component=${service}`])).items.filter(
        (pod) => !pod.metadata.deletionTimestamp,
      );
    const evict = (pod: string) =>
      plane.kubectl(
        ["create", "--raw", `/api/v1/namespaces/${NAMESPACE}/pods/${pod}/eviction`, "-f", "-"],
        JSON.stringify({ apiVersion: "policy/v1", kind: "Eviction", metadata: { name: pod, namespace: NAMESPACE } }),
      );
    /** Waits until `service` has `replicas` healthy pods, as its budget and its Deployment count them; answers the budget. */
    const settled = (service: string, replicas: number) =>
      plane.until(`${service} settled at ${replicas} replicas`, async () => {
        const { status } = await json(Budget, ["get", "pdb", deployment(service)]);
        const { status: rollout } = await json(Deployment, ["get", "deploy", deployment(service)]);
        if (status.currentHealthy !== replicas || rollout.availableReplicas !== replicas)
          throw new Error(`budget ${JSON.stringify(status)}, available ${rollout.availableReplicas}`);
        return status;
      });

    beforeAll(async () => {
      plane = await ControlPlane.start(tools, { nodes: 2 });
      // The bundled nats-server's claim binds to a volume as it would to a provisioner's.
      await plane.kubectl(
        ["apply", "-f", "-"],
        [
          "apiVersion: v1",
          "kind: PersistentVolume",
          "metadata: { name: nats-data }",
          "spec:",
          "  capacity: { storage: 10Gi }",
          "  accessModes: [ReadWriteOnce]",
          "  persistentVolumeReclaimPolicy: Retain",
          "  hostPath: { path: /var/lib/qbo-nats }",
        ].join("\n"),
      );
    }, 180_000);
    afterAll(async () => plane?.stop());

    it("chart - helm 4 install --wait: every service's pods are scheduled and Ready, NATS's volume is bound", {
      timeout: 240_000,
    }, async () => {
      await helm(["install", "qbo", CHART, "--create-namespace", "--wait", ...VALUES]);
      const { items } = await json(Deployments, ["get", "deploy"]);
      expect(
        Object.fromEntries(items.map((d) => [d.metadata.name, [d.spec.replicas, d.status.availableReplicas]])),
      ).toEqual(Object.fromEntries(SERVICES.map((service) => [deployment(service), [2, 2]])));
      const nats = await plane.kubectl([
        "get",
        "pvc",
        "-n",
        NAMESPACE,
        "-l",
        "app.kubernetes.io/component=nats",
        "-o",
        "jsonpath={.items[*].status.phase}",
      ]);
      expect(nats).toBe("Bound");
      for (const service of SERVICES) {
        const pods = await podsOf(service);
        expect(pods.map((pod) => pod.status.phase)).toEqual(["Running", "Running"]);
        // Topology spread: two replicas on two nodes, so losing a node leaves each service running.
        expect(new Set(pods.map((pod) => pod.spec.nodeName)).size).toBe(2);
      }
    });

    it("chart - an upgrade rolls exactly the services whose configuration changed, never below their replicas, and --wait waits for it", {
      timeout: 240_000,
    }, async () => {
      /** Upgrades with `values` while watching availability; answers which services got new pods. */
      const upgrade = async (values: string[]) => {
        const before = new Map<string, string[]>();
        for (const service of SERVICES)
          before.set(
            service,
            (await podsOf(service)).map((pod) => pod.metadata.name),
          );
        // maxUnavailable 0: a new pod is Ready before an old one goes. Every status change is seen (a watch).
        const lowest = new Map<string, number>();
        const stopWatching = plane.kubectlLines(
          [
            "get",
            "deploy",
            "-n",
            NAMESPACE,
            "--watch",
            "-o",
            'jsonpath={.metadata.name} {.status.availableReplicas}{"\\n"}',
          ],
          (line) => {
            const [name, available] = line.split(" ");
            if (name) lowest.set(name, Math.min(lowest.get(name) ?? 99, Number(available || 0)));
          },
        );
        try {
          await helm(["upgrade", "qbo", CHART, "--wait", "--reuse-values", ...values]);
        } finally {
          await stopWatching();
        }
        const rolled: string[] = [];
        for (const service of SERVICES) {
          const now = (await podsOf(service)).map((pod) => pod.metadata.name);
          expect(now).toHaveLength(2);
          expect(lowest.get(deployment(service))).toBe(2);
          const kept = now.filter((name) => before.get(service)?.includes(name));
          // A service is rolled whole or not at all.
          expect([0, 2]).toContain(kept.length);
          if (kept.length === 0) rolled.push(service);
        }
        return rolled;
      };
      expect(await upgrade(["--set", "processor.config.COALESCE_MS=200"])).toEqual(["processor"]);
      expect(await upgrade(["--set", "logLevel=debug"])).toEqual([...SERVICES]);
    });

    it("chart - PodDisruptionBudgets: a drain evicts one pod of a service at a time, and a single replica never blocks it", {
      timeout: 240_000,
    }, async () => {
      expect(await settled("processor", 2)).toEqual({ currentHealthy: 2, desiredHealthy: 1, disruptionsAllowed: 1 });
      const [first, second] = (await podsOf("processor")).map((pod) => pod.metadata.name);
      if (!first || !second) throw new Error("two processor pods expected");
      // As `kubectl drain` does: the nodes cordoned first, so an evicted pod's replacement waits unscheduled.
      await plane.kubectl(["cordon", "-l", "type=kwok"]);
      await evict(first);
      // The budget is spent until the replacement is Ready.
      await expect(evict(second)).rejects.toThrow(/disruption budget/);
      await plane.kubectl(["uncordon", "-l", "type=kwok"]);
      await settled("processor", 2);
      await evict(second);
      await settled("processor", 2);

      await helm(["upgrade", "qbo", CHART, "--wait", "--reuse-values", "--set", "ordering.replicas=1"]);
      const [only] = (await podsOf("ordering")).map((pod) => pod.metadata.name);
      if (!only) throw new Error("one ordering pod expected");
      await evict(only);
    });

    it("chart - helm 4 uninstall leaves only what must persist: the generated keys and NATS's volume claim", {
      timeout: 120_000,
    }, async () => {
      await helm(["uninstall", "qbo", "--wait"]);
      const left = await plane.kubectl([
        "get",
        "deploy,sts,svc,sa,role,rolebinding,pdb,networkpolicy,secret,pvc",
        "-n",
        NAMESPACE,
        "-o",
        "name",
      ]);
      expect(left.split("\n").filter((line) => line && !line.endsWith("/default"))).toEqual([
        "secret/qbo-qbo-webhooks",
        "persistentvolumeclaim/data-qbo-qbo-webhooks-nats-0",
      ]);
    });
  },
);
