import { Buckets, type RealmRecord } from "@qbo-webhooks/contracts";
import { RealmRegistry } from "@qbo-webhooks/entity-store";
import { openBucket } from "@qbo-webhooks/messaging";
import type { Company } from "@qbo-webhooks/sandbox";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ProcessorService, startProcessor } from "./processor-service.js";
import { type AppReceiver, startAppReceiver } from "./testing/app-receiver.js";
import { logger, type Pipeline, startPipeline } from "./testing/pipeline-harness.js";

// Pausing a company holds its processing: nothing of it reaches the feed or the app while paused,
// other companies go on, and on resuming every held change arrives, in order, none lost.
describe("processor: a paused company", () => {
  let pipeline: Pipeline;
  let app: AppReceiver;
  let processor: ProcessorService;
  let registry: RealmRegistry;
  beforeAll(async () => {
    pipeline = await startPipeline({ realms: 2 });
    app = await startAppReceiver();
    processor = await startProcessor(pipeline.processorConfig("p1", "cdc", { url: app.url }), logger);
    registry = new RealmRegistry(await openBucket(pipeline.reader, Buckets.realms, { replicas: 1 }));
  });
  afterAll(async () => {
    await processor?.close();
    await app?.close();
    await pipeline?.close();
  });

  const setPaused = (realmId: string, paused: boolean) =>
    registry.update(
      realmId,
      (r): RealmRecord => ({
        realmId,
        environment: "sandbox",
        entities: ["Customer", "Invoice"],
        connectedAt: Date.now(),
        status: "connected",
        ...r,
        paused,
      }),
    );
  const held = async () =>
    (await processor.registry.getSingleMetric("qbo_processor_held_events")?.get())?.values[0]?.value ?? 0;

  it("pause - a paused company's changes (more than a partition keeps in hand) wait while the other's flow; resumed, all arrive in order", {
    timeout: 120_000,
  }, async () => {
    const [paused, running] = pipeline.realms as [Company, Company];
    await setPaused(paused.realmId, true);
    await setPaused(running.realmId, false);
    const heldTraffic = pipeline.steppedTraffic(41, { realms: [paused] });
    const otherTraffic = pipeline.steppedTraffic(42, { realms: [running] });
    for (let round = 0; round < 12; round++) {
      heldTraffic.step(30);
      otherTraffic.step(10);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const truth = pipeline.truth();
    await expect
      .poll(() => app.copy()[running.realmId], { timeout: 60_000, interval: 500 })
      .toEqual(truth[running.realmId]);
    await expect.poll(held, { timeout: 20_000 }).toBeGreaterThan(0);
    // The running company is done; the paused one has nothing anywhere users look.
    expect(app.accepted.filter((c) => c.realmId === paused.realmId)).toEqual([]);
    expect((await pipeline.feedCopy())[paused.realmId]).toBeUndefined();
    expect((await pipeline.copy())[paused.realmId]).toBeUndefined();

    await setPaused(paused.realmId, false);
    await expect.poll(() => app.copy(), { timeout: 60_000, interval: 500 }).toEqual(pipeline.truth());
    expect(await pipeline.feedCopy()).toEqual(pipeline.truth());
    expect(app.problems).toEqual([]);
    // In order in the feed: each entity's versions only go up.
    for (const [key, versions] of await pipeline.changeHistories()) {
      expect(versions, key).toEqual([...versions].sort((a, b) => a - b));
    }
    expect(await held()).toBe(0);
  });

  it("pause - a processor that starts while a company is paused holds the events waiting for it", {
    timeout: 90_000,
  }, async () => {
    const [paused] = pipeline.realms as [Company, Company];
    await setPaused(paused.realmId, true);
    await processor.close();
    const waiting = pipeline.steppedTraffic(43, { realms: [paused] });
    for (let round = 0; round < 3; round++) waiting.step(20);
    const feedBefore = (await pipeline.feedCopy())[paused.realmId];
    // The new replica takes the partitions with the events already waiting: not one may be applied.
    processor = await startProcessor(pipeline.processorConfig("p2", "cdc", { url: app.url }), logger);
    await expect.poll(held, { timeout: 20_000 }).toBeGreaterThan(0);
    expect((await pipeline.feedCopy())[paused.realmId]).toEqual(feedBefore);
    await setPaused(paused.realmId, false);
    await expect.poll(() => app.copy(), { timeout: 60_000, interval: 500 }).toEqual(pipeline.truth());
    expect(app.problems).toEqual([]);
  });
});
