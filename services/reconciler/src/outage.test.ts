import { Buckets, Streams } from "@qbo-webhooks/contracts";
import { RealmRegistry } from "@qbo-webhooks/entity-store";
import { openBucket } from "@qbo-webhooks/messaging";
import { createLogger } from "@qbo-webhooks/observability";
import { type ProcessorService, startProcessor } from "@qbo-webhooks/processor/service";
import { logger, type Pipeline, startPipeline } from "@qbo-webhooks/processor/testing";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type ReconcilerService, startReconciler } from "./reconciler-service.js";
import { connectThroughConsent, counter, reconcilerConfig } from "./testing/reconciler-harness.js";

const MINUTE = 60_000;
let pipeline: Pipeline;
let processor: ProcessorService;
let reconciler: ReconcilerService;

beforeAll(async () => {
  pipeline = await startPipeline({ realms: 3, policy: "current" });
  processor = await startProcessor(pipeline.processorConfig("proc"), logger);
  reconciler = await startReconciler(
    reconcilerConfig(pipeline, "rec"),
    createLogger({ service: "rec", level: (process.env.TEST_LOG ?? "silent") as "silent" }),
    {
      now: () => pipeline.sandbox.clock.now(),
    },
  );
  await connectThroughConsent(pipeline, reconciler);
  const realms = new RealmRegistry(await openBucket(pipeline.reader, Buckets.realms, { replicas: 1 }));
  // The connect asked for a full resync of each company: wait for it before changing anything.
  while (!(await realms.list()).every((r) => r.lastCdcResult === "succeeded" && !r.cdcRequestedAt)) {
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
});
afterAll(async () => {
  await reconciler?.close();
  await processor?.close();
  await pipeline?.close();
});

it("current policy - after an ingress outage CDC brings every copy up to date long before QuickBooks' 2 h retry, which then changes nothing", {
  timeout: 150_000,
}, async () => {
  await pipeline.traffic(90, 21);
  await expect.poll(pipeline.copy, { timeout: 20_000, interval: 300 }).toEqual(pipeline.truth());

  // The ingress goes down; QuickBooks' ordered queue fails at 0 s, 10 s, 20 s, 30 s, 5 min and 20 min.
  await pipeline.stopIngress();
  await pipeline.traffic(150, 22);
  await pipeline.sandbox.clock.advance(MINUTE);
  expect(await pipeline.copy()).not.toEqual(pipeline.truth());
  // Past SILENCE_MS (15 min) without webhooks, the leader catches up by CDC: the ingress is still down.
  await pipeline.sandbox.clock.advance(16 * MINUTE);
  await expect.poll(pipeline.copy, { timeout: 60_000, interval: 300 }).toEqual(pipeline.truth());
  expect(pipeline.sandbox.deliveries("app").queueDepth).toBeGreaterThan(0);
  expect(await counter(reconciler, "qbo_cdc_missed_events_total")).toBeGreaterThan(0);

  // The ingress is back after 30 minutes; QuickBooks retries at the 2 h step and drains its queue.
  await pipeline.sandbox.clock.advance(13 * MINUTE);
  await pipeline.restoreIngress();
  const changesBefore = (await pipeline.reader.jsm.streams.info(Streams.changes.name)).state.messages;
  await pipeline.sandbox.clock.advance(2 * 60 * MINUTE);
  await expect.poll(() => pipeline.sandbox.deliveries("app").queueDepth, { timeout: 30_000 }).toBe(0);
  // Give the late notifications time to pass ordering and the processor.
  await expect
    .poll(async () => (await pipeline.reader.jsm.consumers.info(Streams.webhooks.name, "ordering")).num_pending, {
      timeout: 20_000,
    })
    .toBe(0);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  expect(await pipeline.copy()).toEqual(pipeline.truth());
  expect((await pipeline.reader.jsm.streams.info(Streams.changes.name)).state.messages).toBe(changesBefore);
});
