// A reconciler leading 1,000 companies, each a QuickBooksCompany resource on a real kube-apiserver:
// webhooks arrive for them throughout, so their statuses keep changing; measured are the status
// writes per minute (bounded by STATUS_MIN_INTERVAL_MS and STATUS_WRITES_PER_SECOND), the time
// until every resource shows its status, and the leader's memory (RSS of the process). Bounded:
// BENCH_COMPANIES resources, BENCH_COMPANY_SECONDS of traffic, loopback only. `npm run bench`.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cpuSeconds, residentMb } from "@qbo-webhooks/bench/process-usage";
import { printTable, type Row, writeResults } from "@qbo-webhooks/bench/report";
import { Buckets } from "@qbo-webhooks/contracts";
import { RealmRegistry } from "@qbo-webhooks/entity-store";
import { openBucket } from "@qbo-webhooks/messaging";
import { freePort } from "@qbo-webhooks/messaging/testing";
import { startPipeline } from "@qbo-webhooks/processor/testing";
import { expect, it } from "vitest";
import { z } from "zod";
import { ControlPlane, k8sTools } from "./control-plane.js";
import { companyReconcilerEnv, companyStatusWrites } from "./reconciler-env.js";
import { RUNTIME_VARIABLES } from "./service-variables.js";

const COMPANIES = Number(process.env.BENCH_COMPANIES ?? 1000);
const SECONDS = Number(process.env.BENCH_COMPANY_SECONDS ?? 180);
const CHART = fileURLToPath(new URL("../../../charts/qbo-webhooks", import.meta.url));
const RECONCILER = fileURLToPath(new URL("../../../services/reconciler/dist/reconciler.mjs", import.meta.url));
const NAMESPACE = "bench";
const tools = await k8sTools();

it.skipIf(tools.missing !== undefined)(`company operator: ${COMPANIES} resources`, { timeout: 1_800_000 }, async () => {
  const plane = await ControlPlane.start(tools);
  const pipeline = await startPipeline({ realms: COMPANIES });
  let child: ChildProcess | undefined;
  const dir = await mkdtemp(join(tmpdir(), "qbo-company-bench-"));
  try {
    const { account, config } = await plane.installAsReconciler(CHART, NAMESPACE);
    await writeFile(join(dir, "kubeconfig"), config.exportConfig());

    // Connected companies (tokens stored by the harness), each with its resource.
    const registry = new RealmRegistry(await openBucket(pipeline.reader, Buckets.realms, { replicas: 1 }));
    const now = Date.now();
    for (const company of pipeline.realms) {
      await registry.update(company.realmId, () => ({
        realmId: company.realmId,
        environment: "sandbox",
        entities: ["Customer", "Invoice"],
        connectedAt: now,
        status: "connected",
        accessTokenExpiresAt: now + 3600_000,
        refreshTokenExpiresAt: now + 100 * 86_400_000,
      }));
    }
    const items = pipeline.realms.map((company, i) => ({
      apiVersion: "qbo-webhooks.io/v1alpha1",
      kind: "QuickBooksCompany",
      metadata: { name: `company-${i}`, namespace: NAMESPACE },
      spec: { realmId: company.realmId, entities: ["Customer", "Invoice"] },
    }));
    await plane.kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items }));

    const runtime = await chartRuntime(plane, account);
    const opsPort = await freePort();
    const started = performance.now();
    child = spawn(process.execPath, [...runtime.flags, RECONCILER], {
      env: {
        ...companyReconcilerEnv(pipeline, {
          id: "bench-leader",
          port: await freePort(),
          opsPort,
          kubeconfig: join(dir, "kubeconfig"),
          namespace: NAMESPACE,
          leaseName: account,
        }),
        // Webhooks silent for a minute count: conditions keep changing through the run.
        SILENCE_MS: "60000",
        SILENCE_MIN_MS: "10000",
        ...runtime.env,
      },
      stdio: ["ignore", "ignore", "inherit"],
    });
    const pid = child.pid ?? 0;
    const rss = () => residentMb(pid);
    const writes = (result: "written" | "deferred" | "conflict") => companyStatusWrites(opsPort, result);
    const withStatus = async () => {
      const list = z
        .object({ items: z.array(z.object({ status: z.object({ observedGeneration: z.number() }).optional() })) })
        .parse(JSON.parse(await plane.kubectl(["get", "qbo", "-n", NAMESPACE, "-o", "json"])));
      return list.items.filter((item) => item.status?.observedGeneration !== undefined).length;
    };

    // Every resource shows its status.
    let allAfter = Number.NaN;
    let peak = 0;
    for (;;) {
      peak = Math.max(peak, await rss());
      const count = await withStatus();
      if (count >= COMPANIES) {
        allAfter = (performance.now() - started) / 1000;
        break;
      }
      if (performance.now() - started > 600_000)
        throw new Error(`only ${count} of ${COMPANIES} have a status after 10 min`);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }

    // Then webhooks for them all, for SECONDS: per minute, the writes and the leader's memory.
    const traffic = pipeline.steppedTraffic(7, { skew: 0 });
    const rows: Row[] = [
      {
        phase: "first status of all",
        seconds: allAfter,
        "writes/min": Number.NaN,
        "deferred/min": Number.NaN,
        conflicts: await writes("conflict"),
        "RSS MiB (peak)": peak,
        "leader CPU s": await cpuSeconds(pid),
      },
    ];
    const trafficStart = performance.now();
    let minuteStart = performance.now();
    let [writtenBefore, deferredBefore] = [await writes("written"), await writes("deferred")];
    let minutePeak = 0;
    while (performance.now() - trafficStart < SECONDS * 1000) {
      traffic.step(50);
      minutePeak = Math.max(minutePeak, await rss());
      await new Promise((resolve) => setTimeout(resolve, 1000));
      // A row per minute of traffic, and one for the part of a minute the traffic ends in.
      const ending = performance.now() - trafficStart >= SECONDS * 1000;
      if (performance.now() - minuteStart >= 60_000 || ending) {
        const [written, deferred] = [await writes("written"), await writes("deferred")];
        const minutes = (performance.now() - minuteStart) / 60_000;
        rows.push({
          phase: `traffic, minute ${rows.length}`,
          seconds: (performance.now() - trafficStart) / 1000,
          "writes/min": (written - writtenBefore) / minutes,
          "deferred/min": (deferred - deferredBefore) / minutes,
          conflicts: await writes("conflict"),
          "RSS MiB (peak)": minutePeak,
          "leader CPU s": await cpuSeconds(pid),
        });
        peak = Math.max(peak, minutePeak);
        [writtenBefore, deferredBefore, minuteStart, minutePeak] = [written, deferred, performance.now(), 0];
      }
    }
    printTable(
      `QuickBooksCompany resources: ${COMPANIES}, status writes and the leader's memory (node ${[...runtime.flags, ...Object.entries(runtime.env).map(([k, v]) => `${k}=${v}`)].join(" ")})`,
      rows,
    );
    process.stdout.write(
      `\nresults: ${await writeResults("company-operator", { companies: COMPANIES, runtime, rows })}\n`,
    );
    expect(peak).toBeGreaterThan(0);
  } finally {
    child?.kill("SIGKILL");
    await pipeline.close();
    await plane.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

/**
 * How the chart just installed runs the reconciler: the Node flags before its program and the runtime
 * variables (heap ceiling, malloc arenas), read from its Deployment, so the bench measures what a
 * default install runs. For experiments, BENCH_RECONCILER_NODE_ARGS and BENCH_RECONCILER_NODE_OPTIONS
 * replace them, and glibc's MALLOC_* variables from the bench's environment are added.
 */
async function chartRuntime(plane: ControlPlane, deployment: string) {
  const Container = z.object({
    args: z.array(z.string()),
    env: z.array(z.object({ name: z.string(), value: z.string().optional() })),
  });
  const { spec } = z
    .object({ spec: z.object({ template: z.object({ spec: z.object({ containers: z.array(Container) }) }) }) })
    .parse(JSON.parse(await plane.kubectl(["get", "deployment", deployment, "-n", NAMESPACE, "-o", "json"])));
  const [container] = spec.template.spec.containers;
  if (!container) throw new Error(`deployment ${deployment} has no container`);
  const env = Object.fromEntries(
    container.env.flatMap(({ name, value }) =>
      RUNTIME_VARIABLES.includes(name) && value !== undefined ? [[name, value]] : [],
    ),
  );
  const { BENCH_RECONCILER_NODE_ARGS: args, BENCH_RECONCILER_NODE_OPTIONS: options } = process.env;
  const malloc = Object.entries(process.env).filter(([name]) => name.startsWith("MALLOC_"));
  return {
    flags: args !== undefined ? args.split(" ").filter(Boolean) : container.args.slice(0, -1),
    env: { ...env, ...(options !== undefined ? { NODE_OPTIONS: options } : {}), ...Object.fromEntries(malloc) },
  };
}
