import { type ProcessorService, startProcessor } from "@qbo-webhooks/processor/service";
import { logger, type Pipeline, startPipeline } from "@qbo-webhooks/processor/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ReconcilerService, startReconciler } from "./reconciler-service.js";
import { connectThroughConsent, reconcilerConfig } from "./testing/reconciler-harness.js";

// Every watch or listing of a KV bucket is a consumer on the server. Listing keys on each heartbeat
// or loop pass left one behind every time; what runs steadily must hold a fixed set.
describe("consumers on the server", () => {
  let pipeline: Pipeline;
  const processors: ProcessorService[] = [];
  let reconciler: ReconcilerService;
  beforeAll(async () => {
    pipeline = await startPipeline();
    for (const id of ["c1", "c2"]) processors.push(await startProcessor(pipeline.processorConfig(id), logger));
    reconciler = await startReconciler(reconcilerConfig(pipeline, "rec"), logger, {
      now: () => pipeline.sandbox.clock.now(),
    });
    await connectThroughConsent(pipeline, reconciler);
  });
  afterAll(async () => {
    await reconciler?.close();
    for (const processor of processors) await processor.close();
    await pipeline?.close();
  });

  const consumers = async () => {
    let count = 0;
    for await (const stream of pipeline.reader.jsm.streams.list()) {
      for await (const _ of pipeline.reader.jsm.consumers.list(stream.config.name)) count++;
    }
    return count;
  };

  it("steady running - two processors and a leading reconciler keep the same consumers through 20 s of traffic", {
    timeout: 90_000,
  }, async () => {
    await pipeline.traffic(60, 51);
    await expect.poll(pipeline.copy, { timeout: 30_000, interval: 500 }).toEqual(pipeline.truth());
    const settled = await consumers();
    const deadline = performance.now() + 20_000;
    let round = 0;
    while (performance.now() < deadline) {
      await pipeline.traffic(30, 52 + round++);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
    // Lease heartbeats every 600 ms and loop passes every 200 ms ran 30 and 100 times meanwhile: one
    // consumer left per pass would show as dozens.
    expect(await consumers()).toBeLessThanOrEqual(settled);
  });
});
