import { StorageType } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { Streams } from "@qbo-webhooks/contracts";
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
