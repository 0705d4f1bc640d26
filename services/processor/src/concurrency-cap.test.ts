import { afterAll, beforeAll, expect, it } from "vitest";
import { startProcessor } from "./processor-service.js";
import { logger, type Pipeline, startPipeline } from "./testing/pipeline-harness.js";

let pipeline: Pipeline;
beforeAll(async () => {
  pipeline = await startPipeline({ realms: 6 });
});
afterAll(() => pipeline?.close());

it("processor - runs at most MAX_CONCURRENT_REALMS realm batches at once, and still ends exact", async () => {
  let running = 0;
  let most = 0;
  const processor = await startProcessor({ ...pipeline.processorConfig("capped"), maxConcurrentRealms: 2 }, logger, {
    batchStarted: () => {
      running++;
      most = Math.max(most, running);
    },
    batchEnded: () => running--,
  });
  try {
    // Slow calls keep batches open long enough for every realm to want a slot at once.
    pipeline.sandbox.setApiBehaviour({ latencyMs: 100 });
    await pipeline.traffic(200, 8);
    await expect.poll(pipeline.copy, { timeout: 30_000, interval: 500 }).toEqual(pipeline.truth());
    expect(most).toBe(2);
  } finally {
    await processor.close();
  }
});
