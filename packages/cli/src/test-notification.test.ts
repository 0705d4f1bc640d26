import { Buckets, Streams, Subjects } from "@qbo-webhooks/contracts";
import { RealmRegistry } from "@qbo-webhooks/entity-store";
import { ensureStream, NatsClient, openBucket } from "@qbo-webhooks/messaging";
import { NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import { createLogger } from "@qbo-webhooks/observability";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testNotificationRealm } from "./test-notification.js";

describe("send-test-notification's company", () => {
  let nats: NatsServerProcess;
  let client: NatsClient;
  let realms: RealmRegistry;

  beforeAll(async () => {
    nats = await NatsServerProcess.start();
    client = await NatsClient.connect({
      servers: [nats.url],
      name: "test",
      logger: createLogger({ service: "test", level: "silent" }),
    });
    await ensureStream(client.jsm, Streams.events, { replicas: 1 });
    realms = new RealmRegistry(await openBucket(client, Buckets.realms, { replicas: 1 }));
    for (const [realmId, status] of [
      ["111", "connected"],
      ["222", "connected"],
      ["333", "disconnected"],
    ] as const) {
      await realms.update(realmId, () => ({
        realmId,
        environment: "sandbox",
        entities: ["Customer"],
        connectedAt: Date.parse("2026-11-20T10:00:00Z"),
        status,
      }));
    }
  });
  afterAll(async () => {
    await client?.drain();
    await nats?.dispose();
  });

  const waiting = async (realmId: string, events: number, partition: number) => {
    for (let i = 0; i < events; i++) await client.js.publish(Subjects.events(partition, realmId), "{}");
  };

  it("test notification - goes to the connected company with the least work waiting, not behind an initial load", async () => {
    await waiting("111", 5, 3);
    expect(await testNotificationRealm(client, realms, undefined)).toBe("222");
    // Counted across partitions, per realm.
    await waiting("222", 4, 1);
    await waiting("222", 4, 7);
    expect(await testNotificationRealm(client, realms, undefined)).toBe("111");
  });

  it("test notification - --realm wins, and a company known but not connected is refused with the connected ones", async () => {
    expect(await testNotificationRealm(client, realms, "111")).toBe("111");
    await expect(testNotificationRealm(client, realms, "333")).rejects.toThrow(
      /333 is not connected; connected: 111, 222/,
    );
  });
});
