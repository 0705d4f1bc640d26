import { type BucketName, Buckets } from "@qbo-webhooks/contracts";
import { type KV, kvKey, NatsClient, openBucket } from "@qbo-webhooks/messaging";
import { directGetsDuring, NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import { createLogger } from "@qbo-webhooks/observability";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { DeferredWatermarks } from "./deferred-watermarks.js";
import { EntityStore } from "./entity-store.js";

const logger = createLogger({ service: "test", level: "silent" });
const HOUR = 3_600_000;

describe("entity-store", () => {
  let server: NatsServerProcess;
  let client: NatsClient;
  let store: EntityStore;
  let watermarks: KV;
  beforeAll(async () => {
    server = await NatsServerProcess.start();
    client = await NatsClient.connect({ servers: [server.url], name: "test", logger });
    const bucket = (name: BucketName) => openBucket(client, name, { replicas: 1 });
    watermarks = await bucket(Buckets.watermarks);
    store = new EntityStore(await bucket(Buckets.entities), watermarks);
  });
  afterAll(async () => {
    await client.drain();
    await server.dispose();
  });

  /** Reads of the watermarks bucket sent while `work` runs. */
  const watermarkReadsDuring = (work: () => Promise<void>) => directGetsDuring(client, Buckets.watermarks, work);

  const watermarkOf = async (realmId: string, entity: string) =>
    (await watermarks.get(kvKey(realmId, entity)))?.string();
  const watermark = (realmId: string) => watermarkOf(realmId, "Invoice");

  /** Another process's store on the same buckets: it knows none of this one's writes. */
  const otherStore = async () =>
    new EntityStore(await openBucket(client, Buckets.entities, { replicas: 1 }), watermarks);

  it("entity-store - reads a watermark once, when it first writes it, then writes over its own last write", async () => {
    await (await otherStore()).advanceWatermark("realm-a", "Invoice", "2026-12-07T05:00:00.000Z");
    const fresh = await otherStore();
    expect(
      await watermarkReadsDuring(() => fresh.advanceWatermark("realm-a", "Invoice", "2026-12-07T05:00:01.000Z")),
    ).toBe(1);
    expect(
      await watermarkReadsDuring(async () => {
        await fresh.advanceWatermark("realm-a", "Invoice", "2026-12-07T05:00:02.000Z");
        await fresh.advanceWatermark("realm-a", "Invoice", "2026-12-07T05:00:03.000Z");
      }),
    ).toBe(0);
    expect(await watermark("realm-a")).toBe("2026-12-07T05:00:03.000Z");
  });

  it("entity-store - never moves back a watermark that another writer advanced after this store's last write", async () => {
    const mine = await otherStore();
    await mine.advanceWatermark("realm-c", "Invoice", "2026-12-07T05:00:00.000Z");
    await store.advanceWatermark("realm-c", "Invoice", "2026-12-07T05:00:09.000Z");
    // Written over our last write: it conflicts, so the store reads and finds the later time.
    expect(
      await watermarkReadsDuring(() => mine.advanceWatermark("realm-c", "Invoice", "2026-12-07T05:00:05.000Z")),
    ).toBe(1);
    expect(await watermark("realm-c")).toBe("2026-12-07T05:00:09.000Z");
    await mine.advanceWatermark("realm-c", "Invoice", "2026-12-07T05:00:10.000Z");
    expect(await watermark("realm-c")).toBe("2026-12-07T05:00:10.000Z");
  });

  const noError = (err: unknown) => {
    throw err;
  };

  it("deferred-watermarks - keeps moves in memory until a flush, then writes each key's latest time", async () => {
    const deferred = new DeferredWatermarks(store, HOUR, noError);
    deferred.advance("realm-w1", "Invoice", "2026-12-07T05:00:01.000Z");
    deferred.advance("realm-w1", "Invoice", "2026-12-07T05:00:03.000Z");
    deferred.advance("realm-w1", "Invoice", "2026-12-07T05:00:02.000Z");
    deferred.advance("realm-w1", "Bill", "2026-12-07T05:00:04.000Z");
    expect(await watermark("realm-w1")).toBeUndefined();
    await deferred.stop();
    expect(await watermark("realm-w1")).toBe("2026-12-07T05:00:03.000Z");
    expect(await watermarkOf("realm-w1", "Bill")).toBe("2026-12-07T05:00:04.000Z");
  });

  it("deferred-watermarks - writes on its own every interval, and never moves a watermark back", async () => {
    const deferred = new DeferredWatermarks(store, 50, noError);
    try {
      deferred.advance("realm-w2", "Invoice", "2026-12-07T05:00:09.000Z");
      await vi.waitFor(async () => expect(await watermark("realm-w2")).toBe("2026-12-07T05:00:09.000Z"));
      deferred.advance("realm-w2", "Invoice", "2026-12-07T05:00:05.000Z");
      await deferred.flush();
      expect(await watermark("realm-w2")).toBe("2026-12-07T05:00:09.000Z");
    } finally {
      await deferred.stop();
    }
  });

  it("deferred-watermarks - a write that fails is reported and written by the next flush", async () => {
    const failures: unknown[] = [];
    let failNext = true;
    const flaky = {
      advanceWatermark: async (realmId: string, entity: string, occurredAt: string) => {
        if (failNext) {
          failNext = false;
          throw new Error("NATS timeout");
        }
        await store.advanceWatermark(realmId, entity, occurredAt);
      },
    };
    const deferred = new DeferredWatermarks(flaky, HOUR, (err) => failures.push(err));
    deferred.advance("realm-w3", "Invoice", "2026-12-07T05:00:01.000Z");
    await deferred.flush();
    expect(failures).toHaveLength(1);
    expect(await watermark("realm-w3")).toBeUndefined();
    await deferred.stop();
    expect(await watermark("realm-w3")).toBe("2026-12-07T05:00:01.000Z");
  });
});
