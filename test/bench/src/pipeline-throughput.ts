// The change pipeline at work, against the sandbox with 100 ms of API latency (QuickBooks' own is
// in that range): freshness at 200 notifications/s; API calls per changed entity in a burst of
// 5,000 changes to one realm; freshness across a scale-down (3 → 2 replicas); throughput with 1, 2
// and 4 processor replicas. Every phase is bounded.
import { isDeepStrictEqual } from "node:util";
import { Consumers, Streams } from "@qbo-webhooks/contracts";
import { type ProcessorService, startProcessor } from "@qbo-webhooks/processor/service";
import { logger, type Pipeline, startPipeline } from "@qbo-webhooks/processor/testing";
import { printTable, type Row, writeResults } from "./bench-report.js";

const API_LATENCY_MS = 100;
const FRESHNESS_SECONDS = Number(process.env.BENCH_PHASE_SECONDS ?? 10);
/**
 * Freshness counts the changes made after this many seconds of the same traffic: the processor's
 * first batch of each realm waits for its first token, CDC call and compiled code (up to about
 * 900 ms here), which would otherwise be the whole p99 of a 10 s run. The warm-up's own p99 is
 * reported beside it.
 */
const FRESHNESS_WARM_UP_SECONDS = Number(process.env.BENCH_WARM_UP_SECONDS ?? 3);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const percentile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;

/** Waits (at most `limitMs`) until the copy equals QuickBooks' truth; answers the seconds it took. */
async function untilExact(pipeline: Awaited<ReturnType<typeof startPipeline>>, limitMs: number): Promise<number> {
  const started = performance.now();
  const expected = pipeline.truth();
  while (!isDeepStrictEqual(await pipeline.copy(), expected)) {
    if (performance.now() - started > limitMs) {
      const got = await pipeline.copy();
      const want = pipeline.truth();
      const diffs: string[] = [];
      for (const [realm, entries] of Object.entries(want)) {
        for (const [key, version] of Object.entries(entries))
          if (got[realm]?.[key] !== version) diffs.push(`${realm} ${key}: want ${version}, have ${got[realm]?.[key]}`);
        for (const key of Object.keys(got[realm] ?? {}))
          if (!(key in entries)) diffs.push(`${realm} ${key}: still in our copy`);
      }
      throw new Error(
        `no exact copy within ${limitMs / 1000} s; ${diffs.length} differences, e.g. ${diffs.slice(0, 5).join("; ")}`,
      );
    }
    await sleep(250);
  }
  return (performance.now() - started) / 1000;
}

type Strategy = "cdc" | "query";

/** When each change in the feed happened and when it was applied (ms since the epoch), in feed order. */
async function appliedChanges(pipeline: Pipeline): Promise<{ occurredAt: number; appliedAt: number }[]> {
  const info = await pipeline.reader.jsm.streams.info(Streams.changes.name);
  const changes: { occurredAt: number; appliedAt: number }[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const change = (await pipeline.reader.jsm.streams.getMessage(Streams.changes.name, { seq }))?.json<{
      occurredAt: string;
      appliedAt: string;
    }>();
    if (change) changes.push({ occurredAt: Date.parse(change.occurredAt), appliedAt: Date.parse(change.appliedAt) });
  }
  return changes;
}

/**
 * Freshness across a scale-down: three replicas, one stopped as Kubernetes stops a pod (SIGTERM: it
 * finishes or releases its work and frees its leases) halfway through; the others take its partitions
 * over. Target: p99 freshness stays under 2 s after the stop. The rate (one change every
 * BENCH_SCALE_DOWN_GAP_MS, default 40: 25 a second) stays within what the replicas sustain in this one
 * process, so that the phase measures the handover rather than a backlog (issue 16: CPU per change).
 */
const SCALE_DOWN_GAP_MS = Number(process.env.BENCH_SCALE_DOWN_GAP_MS ?? 40);
async function scaleDown(): Promise<Row> {
  const pipeline = await startPipeline({ realms: 20 });
  const processors = await Promise.all(
    ["down-1", "down-2", "down-3"].map((id) => startProcessor(pipeline.processorConfig(id), logger)),
  );
  try {
    pipeline.sandbox.setApiBehaviour({ latencyMs: API_LATENCY_MS });
    const traffic = pipeline.steppedTraffic(6);
    const phaseMs = FRESHNESS_SECONDS * 1000;
    const started = performance.now();
    let stoppedAt = 0;
    let stopping: Promise<void> | undefined;
    while (performance.now() - started < 2 * phaseMs) {
      if (!stopping && performance.now() - started > phaseMs) {
        stoppedAt = Date.now();
        stopping = processors.pop()?.close();
      }
      traffic.step(1);
      await sleep(SCALE_DOWN_GAP_MS);
    }
    await stopping;
    await untilExact(pipeline, 60_000);
    const changes = await appliedChanges(pipeline);
    const lagsOf = (from: number, to: number) =>
      changes
        .filter((c) => c.occurredAt >= from && c.occurredAt < to)
        .map((c) => c.appliedAt - c.occurredAt)
        .sort((a, b) => a - b);
    const before = lagsOf(stoppedAt - phaseMs / 2, stoppedAt);
    const after = lagsOf(stoppedAt, Number.POSITIVE_INFINITY);
    return {
      scenario: `scale-down: 3 → 2 replicas at ${Math.round(traffic.made / (2 * FRESHNESS_SECONDS))} changes/s (SIGTERM)`,
      changes: traffic.made,
      "p99 ms before": percentile(before, 0.99),
      "p99 ms after": percentile(after, 0.99),
      "max ms after": after.at(-1) ?? 0,
    };
  } finally {
    for (const processor of processors) await processor.close();
    await pipeline.close();
  }
}

/**
 * Freshness with one change every `gapMs` over 20 `skewed` realms (a few busy, as the sandbox's
 * traffic is), or over 100 `quiet` ones evenly: each realm's changes then come seconds apart, as a
 * production app's notifications do (QuickBooks aggregates them per minute or more).
 */
async function freshness(strategy: Strategy, gapMs: number, realms: "skewed" | "quiet" = "skewed"): Promise<Row> {
  const quiet = realms === "quiet";
  const pipeline = await startPipeline({ realms: quiet ? 100 : 20 });
  const processor = await startProcessor(pipeline.processorConfig("fresh-1", strategy), logger);
  try {
    pipeline.sandbox.setApiBehaviour({ latencyMs: API_LATENCY_MS });
    const traffic = pipeline.steppedTraffic(3, quiet ? { skew: 0 } : {});
    // One change every gapMs: the sandbox sends each as its own notification (5 ms: 200 a second).
    const warmUntil = Date.now() + FRESHNESS_WARM_UP_SECONDS * 1000;
    const end = performance.now() + (FRESHNESS_WARM_UP_SECONDS + FRESHNESS_SECONDS) * 1000;
    let notificationsWarm = 0;
    while (performance.now() < end) {
      traffic.step(1);
      if (!notificationsWarm && Date.now() >= warmUntil)
        notificationsWarm = pipeline.sandbox.deliveries("app").notifications.length;
      await sleep(gapMs);
    }
    await untilExact(pipeline, 60_000);
    const changes = await appliedChanges(pipeline);
    const lagsOf = (keep: (occurredAt: number) => boolean) =>
      changes
        .filter((c) => keep(c.occurredAt))
        .map((c) => c.appliedAt - c.occurredAt)
        .sort((a, b) => a - b);
    const lags = lagsOf((at) => at >= warmUntil);
    const notifications = pipeline.sandbox.deliveries("app").notifications.length - notificationsWarm;
    return {
      scenario: `freshness at ${Math.round(notifications / FRESHNESS_SECONDS)} notifications/s${quiet ? ", quiet realms" : ""}`,
      fetch: strategy,
      changes: lags.length,
      "p50 ms": percentile(lags, 0.5),
      "p99 ms": percentile(lags, 0.99),
      "max ms": lags.at(-1) ?? 0,
      "warm-up p99 ms": percentile(
        lagsOf((at) => at < warmUntil),
        0.99,
      ),
    };
  } finally {
    await processor.close();
    await pipeline.close();
  }
}

async function burst(strategy: Strategy): Promise<Row> {
  const pipeline = await startPipeline({ realms: 1 });
  const processor = await startProcessor(pipeline.processorConfig("burst-1", strategy), logger);
  try {
    pipeline.sandbox.setApiBehaviour({ latencyMs: API_LATENCY_MS });
    const [realm] = pipeline.realms;
    if (!realm) throw new Error("no realm");
    const traffic = pipeline.steppedTraffic(4, { realms: [realm] });
    const changed = new Set<string>();
    // 5,000 changes within the minute: 50 every 0.6 s.
    for (let i = 0; i < 100; i++) {
      traffic.step(50);
      await sleep(600);
    }
    for (const [entity, byId] of Object.entries(realm.snapshot()))
      for (const id of Object.keys(byId ?? {})) changed.add(`${entity}/${id}`);
    const seconds = await untilExact(pipeline, 120_000);
    const stats = pipeline.sandbox.apiStats();
    const calls = Object.values(stats.requests[realm.realmId] ?? {}).reduce((a, b) => a + b, 0);
    return {
      scenario: "burst: 5,000 changes to one realm in 60 s",
      fetch: strategy,
      changes: traffic.made,
      "API calls": calls,
      "calls / changed entity": calls / Math.max(1, changed.size),
      "calls / change": calls / traffic.made,
      "429s": stats.throttled[realm.realmId] ?? 0,
      "drained after s": seconds,
    };
  } finally {
    await processor.close();
    await pipeline.close();
  }
}

/** Realm batches one replica runs at once in the scaling runs (MAX_CONCURRENT_REALMS). */
const SCALING_SLOTS = Number(process.env.BENCH_SCALING_SLOTS ?? 4);
const SCALING_REALMS = Number(process.env.BENCH_SCALING_REALMS ?? 1024);
const CHANGES_PER_REALM = Number(process.env.BENCH_SCALING_CHANGES ?? 2);

/** Events the replicas have finished with, whatever the outcome. */
async function finished(processors: ProcessorService[]): Promise<number> {
  let total = 0;
  for (const processor of processors) {
    const metric = await processor.registry.getSingleMetric("qbo_processor_events_total")?.get();
    for (const value of metric?.values ?? []) if (value.labels.result !== "failed") total += value.value;
  }
  return total;
}

/**
 * A backlog over many realms, queued while no processor runs, drained by 1, 2 or 4 replicas of
 * SCALING_SLOTS concurrent realm batches each: every batch waits on a 100 ms CDC call, so a
 * replica is bound by API latency, and replicas add throughput until QuickBooks' limits.
 */
async function throughput(replicas: number): Promise<Row> {
  const pipeline = await startPipeline({ realms: SCALING_REALMS, partitions: 64 });
  try {
    pipeline.sandbox.setApiBehaviour({ latencyMs: API_LATENCY_MS });
    const traffic = pipeline.steppedTraffic(5, { skew: 0 });
    for (let i = 0; i < CHANGES_PER_REALM * 2; i++) {
      traffic.step(SCALING_REALMS / 2);
      await sleep(50);
    }
    const queued = await settledEvents(pipeline);
    const processors = await Promise.all(
      Array.from({ length: replicas }, (_, i) =>
        startProcessor(
          { ...pipeline.processorConfig(`tp-${replicas}-${i}`), maxConcurrentRealms: SCALING_SLOTS },
          logger,
        ),
      ),
    );
    try {
      // Joining replicas announce themselves a lease beat before they claim: count from the first claim.
      while (!processors.some((p) => p.owned().length > 0)) await sleep(5);
      const started = performance.now();
      const deadline = started + 180_000;
      while ((await finished(processors)) < queued) {
        if (performance.now() > deadline) throw new Error(`backlog of ${queued} events not drained in 180 s`);
        await sleep(10);
      }
      const seconds = (performance.now() - started) / 1000;
      await untilExact(pipeline, 30_000);
      return {
        scenario: `${replicas} processor replica${replicas > 1 ? "s" : ""} × ${SCALING_SLOTS} realm slots, ${SCALING_REALMS} realms`,
        changes: traffic.made,
        events: queued,
        "drained after s": seconds,
        "events/s": queued / seconds,
      };
    } finally {
      for (const processor of processors) await processor.close();
    }
  } finally {
    await pipeline.close();
  }
}

/** Waits until ordering has published every notification's events; answers how many there are. */
async function settledEvents(pipeline: Pipeline): Promise<number> {
  let last = -1;
  for (;;) {
    await sleep(500);
    const ordering = await pipeline.reader.jsm.consumers.info(Streams.webhooks.name, Consumers.ordering);
    const events = (await pipeline.reader.jsm.streams.info(Streams.events.name)).state.messages;
    if (ordering.num_pending + ordering.num_ack_pending === 0 && events === last) return events;
    last = events;
  }
}

// BENCH_ONLY=freshness (CDC's rates), scaling or scale-down runs that phase alone.
const only = process.env.BENCH_ONLY;
const rows: Row[] = [];
if (!only || only === "freshness")
  rows.push(await freshness("cdc", 20), await freshness("cdc", 5), await freshness("cdc", 50, "quiet"));
if (!only) rows.push(await burst("cdc"), await freshness("query", 5), await burst("query"));
if (!only || only === "scale-down") rows.push(await scaleDown());
const scaling: Row[] = [];
if (!only || only === "scaling") for (const replicas of [1, 2, 4]) scaling.push(await throughput(replicas));
const base = Number(scaling[0]?.["events/s"] ?? 1);
for (const row of scaling) row.speedup = `${(Number(row["events/s"]) / base).toFixed(2)}x`;
printTable(`Change pipeline against the sandbox (${API_LATENCY_MS} ms API latency)`, [...rows, ...scaling]);
process.stdout.write(`\nresults: ${await writeResults("pipeline-throughput", [...rows, ...scaling])}\n`);
