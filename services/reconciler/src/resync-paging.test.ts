import { Buckets, Streams } from "@qbo-webhooks/contracts";
import { RealmRegistry } from "@qbo-webhooks/entity-store";
import { openBucket } from "@qbo-webhooks/messaging";
import { type ProcessorService, startProcessor } from "@qbo-webhooks/processor/service";
import { logger, type Pipeline, startPipeline } from "@qbo-webhooks/processor/testing";
import type { Company } from "@qbo-webhooks/sandbox";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ReconcilerService, startReconciler } from "./reconciler-service.js";
import { connectThroughConsent, reconcilerConfig } from "./testing/reconciler-harness.js";

const DAY = 24 * 3600_000;
/** Rows per page of the reconciler's listings (1,000 against QuickBooks; the paging is the same). */
const PAGE = 25;
/** One more than a page: the listing takes two. */
const CUSTOMERS = PAGE + 1;

describe("reconciler: a full resync while rows change", () => {
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

  it("resync - a row deleted between two pages shifts the next row out of the offset paging; that live row is not deleted", {
    timeout: 90_000,
  }, async () => {
    const [company] = pipeline.realms as [Company];
    const customers = Array.from({ length: CUSTOMERS }, () => company.create("Customer"));
    // No daily run: the only runs are the first sync and the one asked for below.
    reconciler = await startReconciler({ ...reconcilerConfig(pipeline, "rec"), dailyCdc: false }, logger, {
      now: () => pipeline.sandbox.clock.now(),
      queryPageSize: PAGE,
    });
    await connectThroughConsent(pipeline, reconciler);
    await expect.poll(pipeline.copy, { timeout: 30_000, interval: 300 }).toEqual(pipeline.truth());

    const realms = new RealmRegistry(await openBucket(pipeline.reader, Buckets.realms, { replicas: 1 }));
    const settled = async () => {
      const record = await realms.get(company.realmId);
      return record?.lastCdcResult === "succeeded" && record.cdcProgress === undefined;
    };
    await expect.poll(settled, { timeout: 30_000 }).toBe(true);
    const first = customers[0];
    const shifted = customers[PAGE];
    if (!first || !shifted) throw new Error("the customers were not created");
    const stop = pipeline.sandbox.onQueryPage((page) => {
      if (page.realmId !== company.realmId || page.entity !== "Customer" || page.startPosition !== 1) return;
      stop();
      // After page one: every later row moves up one place, so page two starts past `shifted`.
      company.delete("Customer", first.Id);
    });
    // Out of touch for longer than CDC looks back: the run asked for lists every type in full.
    const now = pipeline.sandbox.clock.now();
    await realms.update(company.realmId, (r) => r && { ...r, verifiedUntil: now - 31 * DAY, cdcRequestedAt: now });
    await expect
      .poll(async () => (await realms.get(company.realmId))?.cdcRequestedAt, { timeout: 30_000 })
      .toBeUndefined();
    expect((await realms.get(company.realmId))?.lastCdcResult).toBe("succeeded");
    // The deleted customer's webhook arrives in its own time: wait for it, then for the run's findings.
    await expect.poll(pipeline.copy, { timeout: 30_000, interval: 300 }).toEqual(pipeline.truth());
    const idle = async () => {
      const streams = [Streams.webhooks.name, Streams.events.name];
      const waiting = await Promise.all(
        streams.map(async (s) => (await pipeline.reader.jsm.streams.info(s)).state.messages),
      );
      return waiting.every((n) => n === 0);
    };
    await expect.poll(idle, { timeout: 30_000 }).toBe(true);
    const copy = (await pipeline.copy())[company.realmId] ?? {};
    expect(copy[`Customer/${shifted.Id}`], "a live customer skipped by the paging was deleted").toBe("0");
    expect(copy[`Customer/${first.Id}`]).toBeUndefined();
    expect(await pipeline.copy()).toEqual(pipeline.truth());
    expect(await pipeline.feedCopy()).toEqual(pipeline.truth());
  });
});
