import { AckPolicy, DiscardPolicy, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { PARTITIONS_METADATA, Streams } from "@qbo-webhooks/contracts";
import { createLogger } from "@qbo-webhooks/observability";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureStream } from "./ensure-stream.js";
import { NatsClient } from "./nats-client.js";
import { NatsServerProcess } from "./testing/index.js";

const logger = createLogger({ service: "test", level: "silent" });

describe("ensure-stream", () => {
  let server: NatsServerProcess;
  let client: NatsClient;
  beforeAll(async () => {
    server = await NatsServerProcess.start();
    client = await NatsClient.connect({ servers: [server.url], name: "test", logger });
  });
  afterAll(async () => {
    await client.drain();
    await server.dispose();
  });

  it("ensure-stream - creates a file-backed stream with the spec's dedupe window", async () => {
    const info = await ensureStream(client.jsm, Streams.webhooks, { replicas: 1 });
    expect(info.config).toMatchObject({
      name: "QBO_WEBHOOKS",
      subjects: ["qbo.webhooks"],
      storage: StorageType.File,
      duplicate_window: nanos(Streams.webhooks.duplicateWindowMs),
    });
  });

  it("ensure-stream - gives every stream a byte limit; work streams never expire or drop unprocessed messages", async () => {
    for (const spec of Object.values(Streams)) {
      const { config } = await ensureStream(client.jsm, spec, { replicas: 1 });
      expect(config.max_bytes, spec.name).toBeGreaterThan(0);
      if (spec.retention === "work") {
        expect(config, spec.name).toMatchObject({
          retention: RetentionPolicy.Workqueue,
          discard: DiscardPolicy.New,
          max_age: 0,
        });
      }
    }
    expect((await client.jsm.streams.info(Streams.changes.name)).config.discard).toBe(DiscardPolicy.Old);
    expect((await client.jsm.streams.info(Streams.dlq.name)).config.discard).toBe(DiscardPolicy.New);
  });

  it("ensure-stream - converts an older limits-retention work stream only once its consumers are drained, keeping its pins", async () => {
    const { name } = Streams.events;
    await client.jsm.streams.delete(name).catch(() => undefined);
    // As an older version made it: limits retention, 7 days, pinned partitions, one message not yet acked.
    await client.jsm.streams.add({
      name,
      subjects: ["qbo.events.>"],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      metadata: { [PARTITIONS_METADATA]: "4" },
    });
    await client.jsm.consumers.add(name, {
      durable_name: "processor-p1",
      ack_policy: AckPolicy.Explicit,
      filter_subject: "qbo.events.1.*",
    });
    await client.js.publish("qbo.events.1.realm-a", "first");
    const pins = { pins: { [PARTITIONS_METADATA]: "4" } };

    const left = await ensureStream(client.jsm, Streams.events, { replicas: 1 }, pins);
    expect(left.config.retention).toBe(RetentionPolicy.Limits);
    expect(left.state.messages).toBe(1);

    // Acked by its consumer, but a message on a partition nobody reads is still unprocessed.
    const consumer = await client.js.consumers.get(name, "processor-p1");
    (await consumer.next())?.ack();
    await client.js.publish("qbo.events.2.realm-b", "unread");
    await expect.poll(async () => (await client.jsm.consumers.info(name, "processor-p1")).num_ack_pending).toBe(0);
    expect((await ensureStream(client.jsm, Streams.events, { replicas: 1 }, pins)).config.retention).toBe(
      RetentionPolicy.Limits,
    );

    await client.jsm.consumers.add(name, {
      durable_name: "processor-p2",
      ack_policy: AckPolicy.Explicit,
      filter_subject: "qbo.events.2.*",
    });
    (await (await client.js.consumers.get(name, "processor-p2")).next())?.ack();
    await expect.poll(async () => (await client.jsm.consumers.info(name, "processor-p2")).num_ack_pending).toBe(0);
    const converted = await ensureStream(client.jsm, Streams.events, { replicas: 1 }, pins);
    expect(converted.config).toMatchObject({ retention: RetentionPolicy.Workqueue, max_age: 0 });
    expect(converted.config.metadata?.[PARTITIONS_METADATA]).toBe("4");
  });

  it("ensure-stream - is idempotent, including when replicas race", async () => {
    const results = await Promise.all([
      ensureStream(client.jsm, Streams.dlq, { replicas: 1 }),
      ensureStream(client.jsm, Streams.dlq, { replicas: 1 }),
      ensureStream(client.jsm, Streams.dlq, { replicas: 1 }),
    ]);
    expect(new Set(results.map((info) => info.created.toString())).size).toBe(1);
  });

  it("ensure-stream - updates a stream whose config drifted from the spec", async () => {
    await ensureStream(client.jsm, Streams.webhooks, { replicas: 1 });
    const current = await client.jsm.streams.info("QBO_WEBHOOKS");
    await client.jsm.streams.update("QBO_WEBHOOKS", { ...current.config, duplicate_window: nanos(1000) });
    const repaired = await ensureStream(client.jsm, Streams.webhooks, { replicas: 1 });
    expect(repaired.config.duplicate_window).toBe(nanos(Streams.webhooks.duplicateWindowMs));
  });
});
