import { type BucketName, Buckets } from "@qbo-webhooks/contracts";
import { type KV, kvKey, NatsClient, openBucket } from "@qbo-webhooks/messaging";
import { NatsServerProcess } from "@qbo-webhooks/messaging/testing";
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

  /** Reads of the watermarks bucket sent while `work` runs (its gets are direct gets). */
  async function watermarkReadsDuring(work: () => Promise<void>): Promise<number> {
    let reads = 0;
    const sub = client.nc.subscribe(`$JS.API.DIRECT.GET.KV_${Buckets.watermarks}.>`, {
      callback: () => {
        reads++;
      },
    });
    await client.nc.flush();
    await work();
    await client.nc.flush();
    sub.unsubscribe();
    return reads;
  }

  const watermark = async (realmId: string) => (await watermarks.get(kvKey(realmId, "Invoice")))?.string();

  it("entity-store - advances a watermark read ahead without reading it again", async () => {
    await store.advanceWatermark("realm-a", "Invoice", "2026-12-07T05:00:00.000Z");
    const ahead = await store.readAhead("realm-a", [], ["Invoice"]);
    const reads = await watermarkReadsDuring(() =>
      store.advanceWatermark("realm-a", "Invoice", "2026-12-07T05:00:01.000Z", ahead),
    );
    expect(reads).toBe(0);
    expect(await watermark("realm-a")).toBe("2026-12-07T05:00:01.000Z");
    // Without a read ahead, the same step costs a read.
    expect(
      await watermarkReadsDuring(() => store.advanceWatermark("realm-a", "Invoice", "2026-12-07T05:00:02.000Z")),
    ).toBe(1);
  });

  it("entity-store - never moves back a watermark that another writer advanced after the read ahead", async () => {
    await store.advanceWatermark("realm-b", "Invoice", "2026-12-07T05:00:00.000Z");
    const ahead = await store.readAhead("realm-b", [], ["Invoice"]);
    await store.advanceWatermark("realm-b", "Invoice", "2026-12-07T05:00:09.000Z");
    await store.advanceWatermark("realm-b", "Invoice", "2026-12-07T05:00:05.000Z", ahead);
    expect(await watermark("realm-b")).toBe("2026-12-07T05:00:09.000Z");
  });
});
