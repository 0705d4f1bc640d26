import { type BucketName, Buckets } from "@qbo-webhooks/contracts";
import { type KV, kvKey, NatsClient, openBucket } from "@qbo-webhooks/messaging";
import { directGetsDuring, NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import { createLogger } from "@qbo-webhooks/observability";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EntityStore } from "./entity-store.js";

const logger = createLogger({ service: "test", level: "silent" });

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

  const watermark = async (realmId: string) => (await watermarks.get(kvKey(realmId, "Invoice")))?.string();

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
});
