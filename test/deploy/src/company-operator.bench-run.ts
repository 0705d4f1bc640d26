// A reconciler leading 1,000 companies, each a QuickBooksCompany resource on a real kube-apiserver:
// webhooks arrive for them throughout, so their statuses keep changing; measured are the status
// writes per minute (bounded by STATUS_MIN_INTERVAL_MS and STATUS_WRITES_PER_SECOND), the time
// until every resource shows its status, and the leader's memory (RSS of the process). Bounded:
// BENCH_COMPANIES resources, BENCH_COMPANY_SECONDS of traffic, loopback only. `npm run bench`.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { printTable, type Row, writeResults } from "@qbo-webhooks/bench/report";
import { Buckets } from "@qbo-webhooks/contracts";
import { RealmRegistry } from "@qbo-webhooks/entity-store";
import { openBucket } from "@qbo-webhooks/messaging";
import { freePort } from "@qbo-webhooks/messaging/testing";
import { startPipeline } from "@qbo-webhooks/processor/testing";
import { expect, it } from "vitest";
import { z } from "zod";
import { ControlPlane, k8sTools } from "./control-plane.js";
import { companyReconcilerEnv } from "./reconciler-env.js";

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

    const opsPort = await freePort();
    const started = performance.now();
    child = spawn(process.execPath, [RECONCILER], {
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
        // For experiments (heap limits, snapshots): BENCH_RECONCILER_NODE_OPTIONS, and glibc's MALLOC_ARENA_MAX.
        NODE_OPTIONS: process.env.BENCH_RECONCILER_NODE_OPTIONS ?? "",
        ...(process.env.MALLOC_ARENA_MAX ? { MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX } : {}),
      },
      stdio: ["ignore", "ignore", "inherit"],
    });
    const pid = child.pid ?? 0;
    const rss = async () =>
      Number(/VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
    const writes = async (result: string) => {
      const text = await fetch(`http://127.0.0.1:${opsPort}/metrics`).then(
        (r) => r.text(),
        () => "",
      );
      const line = new RegExp(`^qbo_company_status_writes_total\\{[^}]*result="${result}"[^}]*\\} (\\d+)`, "m").exec(
        text,
      );
      return Number(line?.[1] ?? 0);
    };
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
      if (performance.now() - minuteStart >= 60_000) {
        const [written, deferred] = [await writes("written"), await writes("deferred")];
        const minutes = (performance.now() - minuteStart) / 60_000;
        rows.push({
          phase: `traffic, minute ${rows.length}`,
          seconds: (performance.now() - trafficStart) / 1000,
          "writes/min": (written - writtenBefore) / minutes,
          "deferred/min": (deferred - deferredBefore) / minutes,
          conflicts: await writes("conflict"),
          "RSS MiB (peak)": minutePeak,
        });
        peak = Math.max(peak, minutePeak);
        [writtenBefore, deferredBefore, minuteStart, minutePeak] = [written, deferred, performance.now(), 0];
      }
    }
    printTable(`QuickBooksCompany resources: ${COMPANIES}, status writes and the leader's memory`, rows);
    process.stdout.write(`\nresults: ${await writeResults("company-operator", { companies: COMPANIES, rows })}\n`);
    expect(peak).toBeGreaterThan(0);
  } finally {
    child?.kill("SIGKILL");
    await pipeline.close();
    await plane.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
