import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { Streams } from "@qbo-webhooks/contracts";
import { startTelemetry, type Telemetry } from "@qbo-webhooks/observability/telemetry";
import type { Company } from "@qbo-webhooks/sandbox";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ProcessorService, startProcessor } from "./processor-service.js";
import type { ProcessorHooks } from "./realm-batch.js";
import { logger, PARTITIONS, type Pipeline, startPipeline } from "./testing/pipeline-harness.js";

describe("pipeline: sandbox → ingress → ordering → processor", () => {
  let pipeline: Pipeline;
  const processors: ProcessorService[] = [];
  /** Batches under way per realm, across every replica: never more than one. */
  const running = new Map<string, number>();
  let overlaps = 0;
  const tracker: ProcessorHooks = {
    batchStarted: (realmId) => {
      const now = (running.get(realmId) ?? 0) + 1;
      if (now > 1) overlaps++;
      running.set(realmId, now);
    },
    batchEnded: (realmId) => running.set(realmId, (running.get(realmId) ?? 1) - 1),
  };
  const startReplica = async (id: string) => {
    const processor = await startProcessor(pipeline.processorConfig(id), logger, tracker);
    processors.push(processor);
    return processor;
  };

  const spans = new InMemorySpanExporter();
  let telemetry: Telemetry;
  beforeAll(async () => {
    telemetry = startTelemetry({
      serviceName: "pipeline-test",
      exportOtlp: false,
      spanProcessors: [new SimpleSpanProcessor(spans)],
    });
    pipeline = await startPipeline();
  });
  afterAll(async () => {
    for (const processor of processors) await processor.close();
    await pipeline?.close();
    await telemetry?.shutdown();
  });

  /** Why the processor dead-lettered its latest letter, if it has any. */
  const lastProcessorDlqReason = async () =>
    (
      await pipeline.reader.jsm.streams
        .getMessage(Streams.dlq.name, { last_by_subj: "qbo.dlq.processor" })
        .catch(() => null)
    )?.header.get("Qbo-Dlq-Reason");

  async function trafficThenExactCopy(changes: number, seed: number, timeout = 30_000) {
    await pipeline.traffic(changes, seed);
    const expected = pipeline.truth();
    expect(Object.values(expected).flatMap(Object.keys).length).toBeGreaterThan(50);
    await expect.poll(pipeline.copy, { timeout, interval: 500 }).toEqual(expected);
  }
  it("pipeline - duplicated, reordered and delayed webhooks end as an exact copy of QuickBooks", async () => {
    await startReplica("p1");
    pipeline.sandbox.setWebhookFaults("app", [
      { kind: "duplicate", percent: 20 },
      { kind: "reorder", percent: 10 },
      { kind: "delay", percent: 10, delayMs: 1500 },
    ]);
    await trafficThenExactCopy(300, 4);
  });

  it("pipeline - entities CDC does not cover are read with queries instead (QBO.md §4)", async () => {
    const [company] = pipeline.realms as [Company];
    const activity = company.create("TimeActivity");
    company.update("TimeActivity", activity.Id, { Hours: 3 });
    await expect
      .poll(async () => (await pipeline.copy())[company.realmId]?.[`TimeActivity/${activity.Id}`], { timeout: 20_000 })
      .toBe("1");
  });

  it("pipeline - one trace runs from the webhook request through ordering to the processor's batch", () => {
    const finished = spans.getFinishedSpans();
    const requests = new Set(
      finished.filter((s) => s.name === "POST /webhooks/quickbooks").map((s) => s.spanContext().traceId),
    );
    const ordered = finished.filter((s) => s.name === "order notification" && requests.has(s.spanContext().traceId));
    const batches = finished.filter((s) => s.name === "apply realm batch");
    expect(ordered.length).toBeGreaterThan(0);
    expect(batches.some((b) => b.links.some((link) => requests.has(link.context.traceId)))).toBe(true);
  });

  it("pipeline - QBO_CHANGES holds each entity's changes in order", async () => {
    const histories = await pipeline.changeHistories();
    expect(histories.size).toBeGreaterThan(10);
    for (const [key, versions] of histories) expect(versions, key).toEqual([...versions].sort((a, b) => a - b));
  });

  it("pipeline - a second processor takes half the partitions, and all of them back when the first stops", async () => {
    await startReplica("p2");
    const [first, second] = processors as [ProcessorService, ProcessorService];
    await expect.poll(() => [first.owned().length, second.owned().length], { timeout: 15_000 }).toEqual([4, 4]);
    expect(new Set([...first.owned(), ...second.owned()]).size).toBe(PARTITIONS);
    await first.close();
    processors.shift();
    await expect.poll(() => second.owned().length, { timeout: 15_000 }).toBe(PARTITIONS);
  });

  it("pipeline - three replicas share the realms and never process one realm at once", async () => {
    await startReplica("p3");
    await startReplica("p4");
    await expect.poll(() => processors.map((p) => p.owned().length).sort(), { timeout: 15_000 }).toEqual([2, 3, 3]);
    await trafficThenExactCopy(300, 5);
    expect(overlaps).toBe(0);
  });

  it("pipeline - a 429 storm and 5xx bursts slow it down but lose nothing (QBO.md §6, §8)", {
    timeout: 300_000,
  }, async () => {
    const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);
    const before = pipeline.sandbox.apiStats();
    const seen = () => {
      const stats = pipeline.sandbox.apiStats();
      return {
        throttled: total(stats.throttled) - total(before.throttled),
        serverErrors: total(stats.serverErrors) - total(before.serverErrors),
      };
    };
    pipeline.sandbox.setApiBehaviour({ requestsPerSecond: 1, serverErrors: [{ status: 503, percent: 20 }] });
    try {
      // A round may make few calls that pass the throttle (CDC coalesces), so 20% of them may all
      // succeed: more rounds until both faults were met, each ending with an exact copy.
      for (let round = 0; round < 4 && (seen().throttled === 0 || seen().serverErrors === 0); round++) {
        await trafficThenExactCopy(150, 6 + round, 60_000);
      }
      expect(seen().throttled).toBeGreaterThan(0);
      expect(seen().serverErrors).toBeGreaterThan(0);
    } finally {
      pipeline.sandbox.setApiBehaviour({});
    }
  });

  it("pipeline - QuickBooks answers cut short, wrongly typed or HTML are retried: the copy ends exact, never wrong", {
    timeout: 300_000,
  }, async () => {
    const spoiled = pipeline.sandbox.apiStats().malformedAnswers;
    pipeline.sandbox.setApiBehaviour({
      malformedAnswers: (["read", "query", "cdc"] as const).flatMap((endpoint) =>
        (["truncated", "wrongTypes", "html"] as const).map((kind) => ({ kind, endpoint, percent: 4 })),
      ),
    });
    try {
      // 12% of each endpoint's answers are spoiled, but a round may make few calls (CDC coalesces): more
      // rounds until at least one was, each ending with an exact copy.
      for (let round = 0; round < 6 && pipeline.sandbox.apiStats().malformedAnswers === spoiled; round++) {
        await trafficThenExactCopy(150, 8 + round, 60_000);
      }
      expect(pipeline.sandbox.apiStats().malformedAnswers - spoiled).toBeGreaterThan(0);
    } finally {
      pipeline.sandbox.setApiBehaviour({});
    }
  });

  it("pipeline - an answer that stays malformed dead-letters the event with the reason, and changes no copy", {
    timeout: 60_000,
  }, async () => {
    const [realm] = pipeline.realms as [Company];
    pipeline.sandbox.setApiBehaviour({
      malformedAnswers: (["read", "query", "cdc"] as const).map((endpoint) => ({
        kind: "wrongTypes" as const,
        endpoint,
        percent: 100,
      })),
    });
    try {
      const customer = realm.create("Customer");
      await expect
        .poll(lastProcessorDlqReason, { timeout: 40_000 })
        .toMatch(/QBO_BAD_RESPONSE: \w+: unexpected answer at [\w.]+Id: .*expected string, received number/);
      expect((await pipeline.copy())[realm.realmId]?.[`Customer/${customer.Id}`]).toBeUndefined();
    } finally {
      pipeline.sandbox.setApiBehaviour({});
    }
  });

  it("pipeline - a revoked realm's events are dead-lettered with the reason; the others go on", {
    timeout: 60_000,
  }, async () => {
    const [open, , revoked] = pipeline.realms as [Company, Company, Company];
    // Tokens dead, webhooks still flowing: e.g. a refresh token left unused past its 100 days.
    pipeline.sandbox.oauth.revokeCompany("app", revoked.realmId);
    revoked.create("Customer");
    const kept = open.create("Vendor");
    await expect
      .poll(async () => (await pipeline.copy())[open.realmId]?.[`Vendor/${kept.Id}`], { timeout: 20_000 })
      .toBe("0");
    await expect.poll(lastProcessorDlqReason, { timeout: 40_000 }).toMatch(/QBO_UNAUTHORIZED/);
  });
});
