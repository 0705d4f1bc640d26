import { Buckets, type ChangeEvent } from "@qbo-webhooks/contracts";
import { type KV, NatsClient, openBucket } from "@qbo-webhooks/messaging";
import { countedReads, NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import { createLogger } from "@qbo-webhooks/observability";
import { afterAll, beforeAll, expect, it } from "vitest";
import { EntityVersions } from "./entity-versions.js";

const logger = createLogger({ service: "test", level: "silent" });
let server: NatsServerProcess;
let client: NatsClient;
let kv: KV;

beforeAll(async () => {
  server = await NatsServerProcess.start();
  client = await NatsClient.connect({ servers: [server.url], name: "test", logger });
  kv = await openBucket(client, Buckets.entityVersions, { replicas: 1 });
});
afterAll(async () => {
  await client.drain();
  await server.dispose();
});

const event = (id: string, second: number, eventId = `e-${id}-${second}`): ChangeEvent => ({
  realmId: "realm-1",
  entity: "Invoice",
  id,
  operation: "Update",
  occurredAt: `2026-12-07T05:00:${String(second).padStart(2, "0")}.000Z`,
  source: "webhook",
  eventId,
});

it("entity-versions - judges an entity it read or recorded without reading it again", async () => {
  const counted = countedReads(kv);
  const versions = new EntityVersions(counted.kv);
  expect(await versions.judge(event("1", 10))).toBe("newer");
  await versions.record(event("1", 10));
  expect(await versions.judge(event("1", 10))).toBe("duplicate");
  expect(await versions.judge(event("1", 9))).toBe("stale");
  expect(await versions.judge(event("1", 11))).toBe("newer");
  await versions.record(event("1", 11));
  expect(await versions.judge(event("1", 11))).toBe("duplicate");
  expect(counted.reads()).toBe(1);
});

it("entity-versions - a later record by another replica is kept: ours conflicts, reads it and stays behind it", async () => {
  const ours = new EntityVersions(kv);
  const theirs = new EntityVersions(kv);
  await ours.record(event("2", 10));
  await theirs.record(event("2", 30));
  // Out of date, ours takes second 20 for newer (published once more: harmless, see EntityVersions)…
  expect(await ours.judge(event("2", 20))).toBe("newer");
  await ours.record(event("2", 20));
  // …but recording it conflicts and keeps their later record, which ours now knows.
  expect(await new EntityVersions(kv).verdictOf(event("2", 30, "e-2-30"))).toBe("duplicate");
  expect(await ours.judge(event("2", 25))).toBe("stale");
});
