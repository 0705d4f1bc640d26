import type { StreamSpec } from "@qbo-webhooks/contracts";
import { createLogger } from "@qbo-webhooks/observability";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureStream } from "./ensure-stream.js";
import { FencedAppender } from "./fenced-appender.js";
import { NatsClient } from "./nats-client.js";
import { PublishError } from "./publish-durable.js";
import { NatsServerProcess } from "./testing/index.js";

const logger = createLogger({ service: "test", level: "silent" });
const spec: StreamSpec = {
  name: "TEST_FENCE",
  description: "fenced-appender tests",
  subjects: ["fence.>"],
  retention: "history",
  maxAgeMs: 0,
  maxBytes: 64 * 1024 * 1024,
  duplicateWindowMs: 60_000,
};
const encoder = new TextEncoder();
const entry =
  (text: string, msgId = text) =>
  () => ({
    payload: encoder.encode(text),
    options: { msgId, timeoutMs: 2000, headers: { "Qbo-Text": text } },
  });

describe("fenced-appender", () => {
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

  const texts = async (subject: string) => {
    const info = await client.jsm.streams.info(spec.name, { subjects_filter: subject });
    const found: string[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const msg = await client.jsm.streams.getMessage(spec.name, { seq }).catch(() => null);
      if (msg?.subject === subject) found.push(msg.string());
    }
    return found;
  };

  it("fence - once the next holder has appended, the old holder's appends are refused: its lease lapsed while it was paused", async () => {
    let oldHolds = true;
    const old = new FencedAppender(client, spec.name, () => oldHolds);
    await old.append("fence.a", entry("v1"));
    // The old holder pauses (GC, SIGSTOP); its lease lapses and another replica takes over.
    oldHolds = false;
    const next = new FencedAppender(client, spec.name, () => true);
    await next.append("fence.a", entry("v3"));
    // It wakes up believing it may still write an older version: the stream refuses.
    const refused = await old.append("fence.a", entry("v2")).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(PublishError);
    expect(refused).toMatchObject({ code: "PUBLISH_FENCED" });
    expect(await texts("fence.a")).toEqual(["v1", "v3"]);
  });

  it("fence - a holder whose lease is valid re-reads a subject someone else appended to, and goes on", async () => {
    const first = new FencedAppender(client, spec.name, () => true);
    const second = new FencedAppender(client, spec.name, () => true);
    await first.append("fence.b", entry("b1"));
    await second.append("fence.b", entry("b2"));
    await first.append("fence.b", entry("b3"));
    expect(await texts("fence.b")).toEqual(["b1", "b2", "b3"]);
  });

  it("fence - appending the same message id again (a retry after a crash) stores it once and keeps the subject's last message", async () => {
    const crashed = new FencedAppender(client, spec.name, () => true);
    await crashed.append("fence.c", entry("c1"));
    await crashed.append("fence.c", entry("c2"));
    const successor = new FencedAppender(client, spec.name, () => true);
    const again = await successor.append("fence.c", entry("c2"));
    expect(again.duplicate).toBe(true);
    // The next append continues from what is stored, as the delivery queue numbers realms' changes.
    let previous: string | undefined;
    await successor.append("fence.c", (last) => {
      previous = last?.header("Qbo-Text");
      return entry("c3")();
    });
    expect(previous).toBe("c2");
    expect(await texts("fence.c")).toEqual(["c1", "c2", "c3"]);
  });
});
