import { Buckets } from "@qbo-webhooks/contracts";
import { RealmRegistry } from "@qbo-webhooks/entity-store";
import { openBucket } from "@qbo-webhooks/messaging";
import { type ProcessorService, startProcessor } from "@qbo-webhooks/processor/service";
import { logger, type Pipeline, startPipeline } from "@qbo-webhooks/processor/testing";
import type { Company } from "@qbo-webhooks/sandbox";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ReconcilerService, startReconciler } from "./reconciler-service.js";
import { connectThroughConsent, counter, reconcilerConfig } from "./testing/reconciler-harness.js";

describe("reconciler: a new company's first sync", () => {
  let pipeline: Pipeline;
  let processor: ProcessorService;
  let reconciler: ReconcilerService | undefined;
  beforeAll(async () => {
    pipeline = await startPipeline({ realms: 1 });
    processor = await startProcessor(pipeline.processorConfig("proc"), logger);
  });
  afterAll(async () => {
    await reconciler?.close();
    await processor?.close();
    await pipeline?.close();
  });

  it("first sync - is a full load of every type, even when a webhook for one type was processed first; nothing older counts as missed", {
    timeout: 90_000,
  }, async () => {
    const [company] = pipeline.realms as [Company];
    // The company's books, long before it is connected to us: no webhook will ever announce these.
    pipeline.sandbox.setWebhookFaults("app", [{ kind: "drop", percent: 100 }]);
    for (let i = 0; i < 40; i++) company.create("Customer");
    for (let i = 0; i < 40; i++) company.create("Vendor");
    // QuickBooks sends them a moment later: wait until every one was dropped.
    const dropped = () =>
      pipeline.sandbox
        .deliveries("app")
        .notifications.filter((n) => n.state === "dropped")
        .flatMap((n) => n.changes).length;
    await expect.poll(dropped, { timeout: 10_000 }).toBe(80);
    pipeline.sandbox.setWebhookFaults("app", []);
    await pipeline.sandbox.clock.advance(3600_000);
    // One webhook reaches the pipeline before the company's first CDC.
    const item = company.create("Item");
    await expect
      .poll(async () => (await pipeline.copy())[company.realmId]?.[`Item/${item.Id}`], { timeout: 20_000 })
      .toBe("0");

    reconciler = await startReconciler(reconcilerConfig(pipeline, "rec"), logger, {
      now: () => pipeline.sandbox.clock.now(),
    });
    await connectThroughConsent(pipeline, reconciler);
    await expect.poll(pipeline.copy, { timeout: 45_000, interval: 300 }).toEqual(pipeline.truth());
    const realms = new RealmRegistry(await openBucket(pipeline.reader, Buckets.realms, { replicas: 1 }));
    await expect
      .poll(async () => (await realms.get(company.realmId))?.lastCdcResult, { timeout: 20_000 })
      .toBe("succeeded");
    expect(await counter(reconciler, "qbo_cdc_missed_events_total")).toBe(0);
  });
});
