import { Buckets } from "@qbo-webhooks/contracts";
import { type KV, kvKey, NatsClient, openBucket } from "@qbo-webhooks/messaging";
import { NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import { createLogger } from "@qbo-webhooks/observability";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { DeferredWatermarks } from "./deferred-watermarks.js";
import { EntityStore } from "./entity-store.js";

const logger = createLogger({ service: "test", level: "silent" });
const HOUR = 3_600_000;

describe("deferred-watermarks", () => {
  let server: NatsServerProcess;
  let client: NatsClient;
  let store: EntityStore;
  let watermarks: KV;
  beforeAll(async () => {
    server = await NatsServerProcess.start();
    client = await NatsClient.connect({ servers: [server.url], name: "test", logger });
    watermarks = await openBucket(client, Buckets.watermarks, { replicas: 1 });
    store = new EntityStore(await openBucket(client, Buckets.entities, { replicas: 1 }), watermarks);
  });
  afterAll(async () => {
    await client.drain();
    await server.dispose();
  });

  const watermark = async (realmId: string, entity = "Invoice") =>
    (await watermarks.get(kvKey(realmId, entity)))?.string();
  const noError = (err: unknown) => {
    throw err;
  };

  it("deferred-watermarks - keeps moves in memory until a flush, then writes each key's latest time", async () => {
    const deferred = new DeferredWatermarks(store, HOUR, noError);
    deferred.advance("realm-a", "Invoice", "2026-12-07T05:00:01.000Z");
    deferred.advance("realm-a", "Invoice", "2026-12-07T05:00:03.000Z");
    deferred.advance("realm-a", "Invoice", "2026-12-07T05:00:02.000Z");
    deferred.advance("realm-a", "Bill", "2026-12-07T05:00:04.000Z");
    expect(await watermark("realm-a")).toBeUndefined();
    await deferred.stop();
    expect(await watermark("realm-a")).toBe("2026-12-07T05:00:03.000Z");
    expect(await watermark("realm-a", "Bill")).toBe("2026-12-07T05:00:04.000Z");
  });

  it("deferred-watermarks - writes on its own every interval, and never moves a watermark back", async () => {
    const deferred = new DeferredWatermarks(store, 50, noError);
    try {
      deferred.advance("realm-b", "Invoice", "2026-12-07T05:00:09.000Z");
      await vi.waitFor(async () => expect(await watermark("realm-b")).toBe("2026-12-07T05:00:09.000Z"));
      deferred.advance("realm-b", "Invoice", "2026-12-07T05:00:05.000Z");
      await deferred.flush();
      expect(await watermark("realm-b")).toBe("2026-12-07T05:00:09.000Z");
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
    deferred.advance("realm-c", "Invoice", "2026-12-07T05:00:01.000Z");
    await deferred.flush();
    expect(failures).toHaveLength(1);
    expect(await watermark("realm-c")).toBeUndefined();
    await deferred.stop();
    expect(await watermark("realm-c")).toBe("2026-12-07T05:00:01.000Z");
  });
});
