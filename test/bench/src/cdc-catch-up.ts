// CDC catch-up against the sandbox at QuickBooks' rate limits, with 100 ms of API latency: 10,000
// changes across 100 realms that no webhook announced (QuickBooks dropped them all), found by the
// reconciler's CDC and applied through ordering and the processor. Measures seconds from the
// catch-up request to an exact copy, and API calls per change (reconciler and processor together).
import { isDeepStrictEqual } from "node:util";
import { Buckets } from "@qbo-webhooks/contracts";
import { RealmRegistry } from "@qbo-webhooks/entity-store";
import { openBucket } from "@qbo-webhooks/messaging";
import { startProcessor } from "@qbo-webhooks/processor/service";
import { logger, startPipeline } from "@qbo-webhooks/processor/testing";
import { startReconciler } from "@qbo-webhooks/reconciler/service";
import { connectThroughConsent, counter, reconcilerConfig } from "@qbo-webhooks/reconciler/testing";
import { printTable, type Row, writeResults } from "./bench-report.js";

const REALMS = Number(process.env.BENCH_CDC_REALMS ?? 100);
const CHANGES = Number(process.env.BENCH_CDC_CHANGES ?? 10_000);
const LIMIT_MS = 300_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const pipeline = await startPipeline({ realms: REALMS, partitions: 16 });
const processors = await Promise.all(["p1", "p2"].map((id) => startProcessor(pipeline.processorConfig(id), logger)));
const reconciler = await startReconciler(reconcilerConfig(pipeline, "bench"), logger, {
  now: () => pipeline.sandbox.clock.now(),
});
const totalCalls = () =>
  Object.values(pipeline.sandbox.apiStats().requests)
    .flatMap((byEndpoint) => Object.values(byEndpoint))
    .reduce((a, b) => a + b, 0);
try {
  const realms = new RealmRegistry(await openBucket(pipeline.reader, Buckets.realms, { replicas: 1 }));
  await connectThroughConsent(pipeline, reconciler);
  while (!(await realms.list()).every((r) => r.lastCdcResult === "succeeded" && r.cdcRequestedAt === undefined))
    await sleep(1000);

  // QuickBooks stops telling us anything; the companies keep changing.
  pipeline.sandbox.setWebhookFaults("app", [{ kind: "drop", percent: 100 }]);
  pipeline.sandbox.setApiBehaviour({ latencyMs: 100 });
  const traffic = pipeline.steppedTraffic(9, { skew: 0 });
  for (let made = 0; made < CHANGES; made += 500) {
    traffic.step(Math.min(500, CHANGES - made));
    await sleep(20);
  }
  // Past MISSED_GRACE_MS: no webhook could still be on its way, and CDC takes them all.
  await pipeline.sandbox.clock.advance(10 * 60_000);
  const changed = pipeline.truth();
  const callsBefore = totalCalls();
  const throttledBefore = Object.values(pipeline.sandbox.apiStats().throttled).reduce((a, b) => a + b, 0);

  // Every realm asks for a catch-up at once, as after an outage (the CLI's `realms cdc`, or silence).
  const started = performance.now();
  for (const realm of await realms.list())
    await realms.update(realm.realmId, (r) => r && { ...r, cdcRequestedAt: Date.now() });
  while (!isDeepStrictEqual(await pipeline.copy(), changed)) {
    if (performance.now() - started > LIMIT_MS) throw new Error(`no exact copy within ${LIMIT_MS / 1000} s`);
    await sleep(500);
  }
  const seconds = (performance.now() - started) / 1000;
  const calls = totalCalls() - callsBefore;
  const rows: Row[] = [
    {
      scenario: `CDC catch-up: ${traffic.made.toLocaleString("en")} unannounced changes, ${REALMS} realms`,
      "exact copy after s": seconds,
      "API calls": calls,
      "calls / change": calls / traffic.made,
      "429s": Object.values(pipeline.sandbox.apiStats().throttled).reduce((a, b) => a + b, 0) - throttledBefore,
      "missed counted": await counter(reconciler, "qbo_cdc_missed_events_total"),
    },
  ];
  printTable("CDC catch-up against the sandbox (100 ms API latency, QuickBooks' rate limits)", rows);
  process.stdout.write(`\nresults: ${await writeResults("cdc-catch-up", rows)}\n`);
} finally {
  await reconciler.close();
  for (const processor of processors) await processor.close();
  await pipeline.close();
}
