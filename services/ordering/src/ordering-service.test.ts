import { createHash } from "node:crypto";
import type { StoredMsg } from "@nats-io/jetstream";
import { Buckets, ChangeEvent, Consumers, Headers, partitionOf, Streams, Subjects } from "@qbo-webhooks/contracts";
import { ensureStream, NatsClient, publishDurable } from "@qbo-webhooks/messaging";
import { NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import { createLogger } from "@qbo-webhooks/observability";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type OrderingService, startOrdering } from "./ordering-service.js";

const logger = createLogger({ service: "ordering-test", level: (process.env.TEST_LOG_LEVEL ?? "silent") as "silent" });
const PARTITIONS = 8;
const config = (natsUrl: string) => ({
  natsServers: [natsUrl],
  ops: { port: 0, host: "127.0.0.1" },
  partitions: PARTITIONS,
  maxAttempts: 2,
  streamReplicas: 1,
  shutdownDeadlineMs: 8000,
  logLevel: "silent" as const,
  exportTraces: false,
});

let realmCounter = 1000;
const cloudEvent = (
  realmId: string,
  entityId: string,
  time: string,
  type = "qbo.customer.updated.v1",
  id = `${realmId}-${entityId}-${time}`,
) => ({
  specversion: "1.0",
  id,
  source: "intuit.test",
  type,
  time,
  intuitentityid: entityId,
  intuitaccountid: realmId,
  data: {},
});

describe("ordering service", () => {
  let nats: NatsServerProcess;
  let client: NatsClient;
  let ordering: OrderingService;

  beforeAll(async () => {
    nats = await NatsServerProcess.start();
    client = await NatsClient.connect({ servers: [nats.url], name: "test", logger });
    await ensureStream(client.jsm, Streams.webhooks, { replicas: 1 });
    ordering = await startOrdering(config(nats.url), logger);
  });
  afterAll(async () => {
    await ordering?.close();
    await client?.drain();
    await nats?.dispose();
  });

  let realm: string;
  beforeEach(() => {
    realm = String(realmCounter++);
  });

  /** Stores a notification as the ingress does. */
  async function store(body: unknown) {
    const text = typeof body === "string" ? body : JSON.stringify(body);
    await publishDurable(client, Subjects.webhooks, new TextEncoder().encode(text), {
      msgId: createHash("sha256").update(text).digest("hex"),
      timeoutMs: 2000,
    });
  }

  /** Waits until ordering has handled everything stored so far. */
  async function drained() {
    await expect
      .poll(
        async () => {
          const info = await client.jsm.consumers.info(Streams.webhooks.name, Consumers.ordering);
          return info.num_pending + info.num_ack_pending;
        },
        { timeout: 20_000 },
      )
      .toBe(0);
  }

  async function eventsOf(realmId: string): Promise<{ subject: string; event: ChangeEvent }[]> {
    const info = await client.jsm.streams.info(Streams.events.name);
    const found: { subject: string; event: ChangeEvent }[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const msg: StoredMsg | null = await client.jsm.streams.getMessage(Streams.events.name, { seq }).catch(() => null);
      if (msg?.subject.endsWith(`.${realmId}`))
        found.push({ subject: msg.subject, event: ChangeEvent.parse(msg.json()) });
    }
    return found;
  }

  it("ordering - splits a CloudEvents notification into one event per change, on the realm's partition", async () => {
    await store([
      cloudEvent(realm, "1", "2026-11-01T10:00:00Z"),
      cloudEvent(realm, "2", "2026-11-01T10:00:01Z", "qbo.invoice.voided.v1"),
    ]);
    await drained();
    const events = await eventsOf(realm);
    expect(events.map((e) => e.subject)).toEqual([
      Subjects.events(partitionOf(realm, PARTITIONS), realm),
      Subjects.events(partitionOf(realm, PARTITIONS), realm),
    ]);
    expect(events.map((e) => [e.event.entity, e.event.id, e.event.operation, e.event.source])).toEqual([
      ["Customer", "1", "Update", "webhook"],
      ["Invoice", "2", "Void", "webhook"],
    ]);
  });

  it("ordering - normalises legacy notifications, both time formats (QBO.md §1a)", async () => {
    await store({
      eventNotifications: [
        {
          realmId: realm,
          dataChangeEvent: {
            entities: [
              { name: "Vendor", id: "40", operation: "Update", lastUpdated: "2026-10-05T03:09:04.000Z" },
              { name: "Customer", id: "43", operation: "create", lastUpdated: "2026-10-05T14:42:19-0700" },
            ],
          },
        },
      ],
    });
    await drained();
    expect((await eventsOf(realm)).map((e) => [e.event.entity, e.event.operation, e.event.occurredAt])).toEqual([
      ["Vendor", "Update", "2026-10-05T03:09:04.000Z"],
      ["Customer", "Create", "2026-10-05T21:42:19.000Z"],
    ]);
  });

  it("ordering - drops an event seen before and an event older than the one recorded", async () => {
    const newer = cloudEvent(realm, "7", "2026-11-01T10:05:00Z");
    await store([newer]);
    await store([newer, cloudEvent(realm, "8", "2026-11-01T10:05:01Z")]); // a redelivered event inside a new notification
    await store([cloudEvent(realm, "7", "2026-11-01T10:00:00Z")]); // late and older
    await drained();
    const events = await eventsOf(realm);
    expect(events.map((e) => [e.event.id, e.event.occurredAt])).toEqual([
      ["7", "2026-11-01T10:05:00.000Z"],
      ["8", "2026-11-01T10:05:01.000Z"],
    ]);
    const metrics = await ordering.registry.metrics();
    expect(metrics).toMatch(/qbo_ordering_events_total\{result="duplicate",service="ordering"\} [1-9]/);
    expect(metrics).toMatch(/qbo_ordering_events_total\{result="stale",service="ordering"\} [1-9]/);
  });

  it("ordering - a second change in the same second passes (QuickBooks' times have one-second resolution); a repeat of either does not", async () => {
    const first = cloudEvent(realm, "5", "2026-11-01T10:05:00Z", "qbo.customer.updated.v1", "event-a");
    const second = cloudEvent(realm, "5", "2026-11-01T10:05:00Z", "qbo.customer.updated.v1", "event-b");
    await store([first]);
    await drained();
    await store([second]);
    await store([first, second]); // both again, inside a new notification
    await drained();
    expect((await eventsOf(realm)).map((e) => e.event.eventId)).toEqual(["event-a", "event-b"]);
  });

  it("ordering - a change written to the second (-0800) after one written to the millisecond in that second passes (QBO.md §1a: both formats)", async () => {
    const legacy = (operation: string, lastUpdated: string) => ({
      eventNotifications: [
        { realmId: realm, dataChangeEvent: { entities: [{ name: "Customer", id: "61", operation, lastUpdated }] } },
      ],
    });
    await store(legacy("Create", "2026-11-01T10:06:00.800Z"));
    await drained();
    await store(legacy("Update", "2026-11-01T02:06:00-0800"));
    await drained();
    expect((await eventsOf(realm)).filter((e) => e.event.id === "61").map((e) => e.event.operation)).toEqual([
      "Create",
      "Update",
    ]);
  });

  it("ordering - a late event newer than the recorded one passes, whatever the arrival order", async () => {
    await store([cloudEvent(realm, "9", "2026-11-01T10:00:00Z")]);
    await store([cloudEvent(realm, "9", "2026-11-01T11:00:00Z")]);
    await drained();
    expect((await eventsOf(realm)).map((e) => e.event.occurredAt)).toEqual([
      "2026-11-01T10:00:00.000Z",
      "2026-11-01T11:00:00.000Z",
    ]);
  });

  it("ordering - publishes a notification's changes together, then records them; a second change of one entity waits for the first's record", async () => {
    // What reaches nats-server, in the order it handled it: publishes to the partitions and records
    // of entity versions, as subjects.
    const seen: string[] = [];
    const watch = (subject: string, as: string) =>
      client.nc.subscribe(subject, {
        callback: (_err, msg) => {
          seen.push(`${as} ${msg.subject.split(".").at(-1)}`);
        },
      });
    const subs = [
      watch(Subjects.events(partitionOf(realm, PARTITIONS), realm), "publish"),
      watch(`$KV.${Buckets.entityVersions}.${realm}.>`, "record"),
    ];
    await client.nc.flush();
    try {
      await store([
        cloudEvent(realm, "41", "2026-11-01T10:00:00Z"),
        cloudEvent(realm, "42", "2026-11-01T10:00:01Z"),
        cloudEvent(realm, "41", "2026-11-01T10:00:02Z"),
        cloudEvent(realm, "41", "2026-11-01T09:00:00Z"), // older than the one recorded by then: dropped
      ]);
      await drained();
      await client.nc.flush();
    } finally {
      for (const sub of subs) sub.unsubscribe();
    }
    const publishes = seen.filter((s) => s.startsWith("publish")).length;
    expect(publishes).toBe(3);
    expect(seen.slice(0, 2)).toEqual([`publish ${realm}`, `publish ${realm}`]);
    expect(seen.slice(2, 4).sort()).toEqual(["record 41", "record 42"]);
    expect(seen.slice(4)).toEqual([`publish ${realm}`, "record 41"]);
    expect((await eventsOf(realm)).map((e) => [e.event.id, e.event.occurredAt])).toEqual([
      ["41", "2026-11-01T10:00:00.000Z"],
      ["42", "2026-11-01T10:00:01.000Z"],
      ["41", "2026-11-01T10:00:02.000Z"],
    ]);
  });

  it("ordering - after a Merge, older events about the merged-away entity are dropped (QBO.md §1b)", async () => {
    await store([
      { ...cloudEvent(realm, "27", "2026-11-01T12:00:00Z", "qbo.customer.merged.v1"), data: { deletedid: "31" } },
    ]);
    await store([cloudEvent(realm, "31", "2026-11-01T11:59:00Z")]);
    await drained();
    const events = await eventsOf(realm);
    expect(events.map((e) => [e.event.id, e.event.operation, e.event.deletedId])).toEqual([["27", "Merge", "31"]]);
  });

  it("ordering - a Merge still passes when the surviving entity changed again first, so the merged-away one is deleted", async () => {
    await store([cloudEvent(realm, "27", "2026-11-01T12:05:00Z")]); // later update of the survivor arrives first
    await store([
      { ...cloudEvent(realm, "27", "2026-11-01T12:00:00Z", "qbo.customer.merged.v1"), data: { deletedid: "31" } },
    ]);
    await drained();
    expect((await eventsOf(realm)).map((e) => [e.event.operation, e.event.deletedId])).toEqual([
      ["Update", undefined],
      ["Merge", "31"],
    ]);
  });

  it("ordering - a notification it cannot read is dead-lettered with its reason and does not block later ones", async () => {
    await store('{"events":["a future format"]}');
    await store([cloudEvent(realm, "1", "2026-11-02T10:00:00Z")]);
    await drained();
    const dead = await client.jsm.streams.getMessage(Streams.dlq.name, { last_by_subj: Subjects.dlq("ordering") });
    expect(dead?.string()).toBe('{"events":["a future format"]}');
    expect(dead?.header.get("Qbo-Dlq-Reason")).toMatch(/not a notification/);
    expect(await eventsOf(realm)).toHaveLength(1);
  });

  it("ordering - CDC findings it cannot read are dead-lettered with their payload form, so a replay reads them as findings again", async () => {
    const body = JSON.stringify({ realmId: realm, events: [] });
    await publishDurable(client, Subjects.webhooks, new TextEncoder().encode(body), {
      msgId: `cdc-${realm}`,
      timeoutMs: 2000,
      headers: { [Headers.payloadForm]: "cdc" },
    });
    await drained();
    const dead = await client.jsm.streams.getMessage(Streams.dlq.name, { last_by_subj: Subjects.dlq("ordering") });
    expect(dead?.string()).toBe(body);
    expect(dead?.header.get(Headers.dlqReason)).toMatch(/not CDC findings/);
    expect(dead?.header.get(Headers.payloadForm)).toBe("cdc");
  });

  // Replicas may race (both judge an event newer before either records it), so the stream can hold an
  // older event after a newer one; the processor applies only what is newer. What must hold: the
  // newest change gets through, and no change is published twice.
  it("ordering - while QBO_EVENTS is full, a notification waits (never dead-lettered) and passes once there is room", async () => {
    const { config: full } = await client.jsm.streams.info(Streams.events.name);
    const dlqBefore = (await client.jsm.streams.info(Streams.dlq.name)).state.messages;
    // Full as a stalled partition would leave it: the limit at what the stream holds already.
    const held = Math.max(1, (await client.jsm.streams.info(Streams.events.name)).state.bytes);
    await client.jsm.streams.update(Streams.events.name, { ...full, max_bytes: held });
    try {
      await store([cloudEvent(realm, "1", "2026-11-03T10:00:00Z")]);
      // Longer than maxAttempts (2) retries would take if the wait counted as failures.
      await new Promise((resolve) => setTimeout(resolve, 4000));
      expect(await eventsOf(realm)).toEqual([]);
      expect((await client.jsm.streams.info(Streams.dlq.name)).state.messages).toBe(dlqBefore);
    } finally {
      await client.jsm.streams.update(Streams.events.name, full);
    }
    await expect.poll(async () => (await eventsOf(realm)).length, { timeout: 40_000 }).toBe(1);
    await drained();
    expect((await client.jsm.streams.info(Streams.dlq.name)).state.messages).toBe(dlqBefore);
  });

  it("ordering - two replicas share the work: the newest change gets through, none twice", async () => {
    const second = await startOrdering(config(nats.url), logger);
    try {
      const times = Array.from({ length: 30 }, (_, i) => `2026-11-03T10:00:${String(i).padStart(2, "0")}Z`);
      const shuffled = [...times].sort(() => Math.random() - 0.5);
      for (const time of shuffled) await store([cloudEvent(realm, "5", time)]);
      await drained();
      const events = await eventsOf(realm);
      expect(events.map((e) => e.event.occurredAt)).toContain("2026-11-03T10:00:29.000Z");
      expect(events.length).toBeLessThanOrEqual(30);
      expect(new Set(events.map((e) => e.event.occurredAt)).size).toBe(events.length);
    } finally {
      await second.close();
    }
  });

  it("ordering - carries on after nats-server is killed and restarted", async () => {
    await nats.kill();
    await nats.restart();
    await expect.poll(() => client.connected && ordering.isReady(), { timeout: 15_000 }).toBe(true);
    await store([cloudEvent(realm, "1", "2026-11-04T10:00:00Z")]);
    // Not `drained()`: acks the killed server had not written down come back as pending until ack_wait.
    await expect.poll(async () => (await eventsOf(realm)).length, { timeout: 20_000 }).toBe(1);
  });
});
