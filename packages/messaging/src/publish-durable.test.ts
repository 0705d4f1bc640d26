import { jetstreamManager } from "@nats-io/jetstream";
import type { StreamSpec } from "@qbo-webhooks/contracts";
import { createLogger } from "@qbo-webhooks/observability";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureStream } from "./ensure-stream.js";
import { NatsClient } from "./nats-client.js";
import { PublishError, publishDurable } from "./publish-durable.js";
import { NatsServerProcess } from "./testing/index.js";

const logger = createLogger({ service: "test", level: "silent" });
const spec: StreamSpec = {
  name: "TEST_DURABLE",
  description: "publish-durable tests",
  subjects: ["test.durable"],
  retention: "history",
  maxAgeMs: 60_000,
  maxBytes: 64 * 1024 * 1024,
  duplicateWindowMs: 60_000,
};
const payload = (text: string) => new TextEncoder().encode(text);

describe("publish-durable", () => {
  let server: NatsServerProcess;
  let client: NatsClient;
  beforeAll(async () => {
    server = await NatsServerProcess.start();
    client = await NatsClient.connect({ servers: [server.url], name: "test", logger });
    await ensureStream(client.jsm, spec, { replicas: 1 });
  });
  afterAll(async () => {
    await client.drain();
    await server.dispose();
  });

  it("publish-durable - stores a message once per msg id", async () => {
    const first = await publishDurable(client, "test.durable", payload("a"), { msgId: "id-1", timeoutMs: 2000 });
    const again = await publishDurable(client, "test.durable", payload("a"), { msgId: "id-1", timeoutMs: 2000 });
    expect(first).toMatchObject({ stream: "TEST_DURABLE", duplicate: false });
    expect(again).toMatchObject({ stream: "TEST_DURABLE", seq: first.seq, duplicate: true });
    const info = await client.jsm.streams.info("TEST_DURABLE");
    expect(info.state.messages).toBe(1);
  });

  it("publish-durable - carries the given headers", async () => {
    const stored = await publishDurable(client, "test.durable", payload("b"), {
      msgId: "id-2",
      timeoutMs: 2000,
      headers: { "Qbo-Test": "yes" },
    });
    const msg = await client.jsm.streams.getMessage("TEST_DURABLE", { seq: stored.seq });
    expect(msg?.header.get("Qbo-Test")).toBe("yes");
    expect(msg?.header.get("Nats-Msg-Id")).toBe("id-2");
  });

  it("publish-durable - fails as NATS_UNAVAILABLE when no stream takes the subject", async () => {
    const error = await publishDurable(client, "test.nowhere", payload("c"), { msgId: "id-3", timeoutMs: 2000 }).catch(
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(PublishError);
    expect((error as PublishError).code).toBe("NATS_UNAVAILABLE");
  });

  it("publish-durable - fails as PUBLISH_REJECTED when the message exceeds the server's max payload", async () => {
    const huge = new Uint8Array(client.maxPayload + 1);
    const error = await publishDurable(client, "test.durable", huge, { msgId: "id-4", timeoutMs: 2000 }).catch(
      (err: unknown) => err,
    );
    expect((error as PublishError).code).toBe("PUBLISH_REJECTED");
  });

  it("publish-durable - fails as STREAM_FULL when a work stream reached its byte limit, and keeps what it holds", async () => {
    const small: StreamSpec = {
      ...spec,
      name: "TEST_FULL",
      subjects: ["test.full"],
      retention: "work",
      maxBytes: 4096,
    };
    await ensureStream(client.jsm, small, { replicas: 1 });
    let error: unknown;
    let stored = 0;
    for (let i = 0; i < 100 && !error; i++) {
      await publishDurable(client, "test.full", new Uint8Array(200), { msgId: `full-${i}`, timeoutMs: 2000 }).then(
        () => stored++,
        (err: unknown) => (error = err),
      );
    }
    expect((error as PublishError).code).toBe("STREAM_FULL");
    const info = await client.jsm.streams.info("TEST_FULL");
    // Nothing older made room: every acknowledged message is still there.
    expect(info.state.messages).toBe(stored);
    expect(info.state.first_seq).toBe(1);
  });

  it("publish-durable - fails within its deadline while the server is down, and works after restart", async () => {
    await server.kill();
    const started = Date.now();
    const error = await publishDurable(client, "test.durable", payload("d"), { msgId: "id-5", timeoutMs: 1000 }).catch(
      (err: unknown) => err,
    );
    expect(Date.now() - started).toBeLessThan(1500);
    expect(["NATS_UNAVAILABLE", "PUBLISH_TIMEOUT"]).toContain((error as PublishError).code);
    await server.restart();
    await expect.poll(() => client.connected, { timeout: 10_000 }).toBe(true);
    const stored = await publishDurable(client, "test.durable", payload("e"), { msgId: "id-6", timeoutMs: 2000 });
    expect(stored.duplicate).toBe(false);
    // The store survived the crash: file storage.
    const jsm = await jetstreamManager(client.nc);
    expect((await jsm.streams.info("TEST_DURABLE")).state.messages).toBeGreaterThanOrEqual(3);
  });
});
