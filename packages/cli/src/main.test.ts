import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Headers, partitionOf, Streams, Subjects } from "@qbo-webhooks/contracts";
import { ensureStream, NatsClient, publishDurable } from "@qbo-webhooks/messaging";
import { NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import { createLogger } from "@qbo-webhooks/observability";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const run = promisify(execFile);
const logger = createLogger({ service: "test", level: "silent" });

describe("qbo-webhooks dlq", () => {
  let nats: NatsServerProcess;
  let client: NatsClient;
  const cli = (...args: string[]) => run(process.execPath, [MAIN, ...args, "--nats", nats.url, "--partitions", "8"]);

  beforeAll(async () => {
    nats = await NatsServerProcess.start();
    client = await NatsClient.connect({ servers: [nats.url], name: "test", logger });
    for (const spec of [Streams.webhooks, Streams.events, Streams.dlq])
      await ensureStream(client.jsm, spec, { replicas: 1 });
    const letter = (stage: "ingress" | "processor", body: string, reason: string) =>
      publishDurable(client, Subjects.dlq(stage), new TextEncoder().encode(body), {
        msgId: `${stage}-${body.length}`,
        timeoutMs: 2000,
        headers: { [Headers.dlqStage]: stage, [Headers.dlqReason]: reason },
      });
    await letter("ingress", '{"future":"format"}', "unknown shape");
    await letter(
      "processor",
      JSON.stringify({
        realmId: "123",
        entity: "Customer",
        id: "1",
        operation: "Update",
        occurredAt: "2026-11-01T10:00:00.000Z",
        source: "webhook",
        eventId: "e-1",
      }),
      "QBO_UNAUTHORIZED: connect the company again",
    );
  });
  afterAll(async () => {
    await client?.drain();
    await nats?.dispose();
  });

  it("dlq - lists dead letters with stage and reason, as text and as JSON", async () => {
    const { stdout } = await cli("dlq", "list");
    expect(stdout).toMatch(/1 .* ingress\s+unknown shape/);
    expect(stdout).toMatch(/2 .* processor\s+QBO_UNAUTHORIZED/);
    const json = JSON.parse((await cli("dlq", "list", "--stage", "processor", "--json")).stdout);
    expect(json).toEqual([expect.objectContaining({ seq: 2, stage: "processor", subject: "qbo.dlq.processor" })]);
  });

  it("dlq - shows one dead letter with its body", async () => {
    const { stdout } = await cli("dlq", "show", "1");
    expect(stdout).toContain('{"future":"format"}');
    expect(stdout).toContain("reason: unknown shape");
  });

  it("dlq - replays a change event to its realm's partition and a notification to qbo.webhooks, then removes them", async () => {
    const { stdout } = await cli("dlq", "replay", "--all", "--json");
    expect(JSON.parse(stdout)).toEqual([
      { seq: 1, subject: Subjects.webhooks },
      { seq: 2, subject: Subjects.events(partitionOf("123", 8), "123") },
    ]);
    expect((await client.jsm.streams.info(Streams.dlq.name)).state.messages).toBe(0);
    const replayed = await client.jsm.streams.getMessage(Streams.webhooks.name, { last_by_subj: Subjects.webhooks });
    expect(replayed?.string()).toBe('{"future":"format"}');
    expect((await cli("dlq", "list")).stdout.trim()).toBe("no dead letters");
  });

  it("dlq - a wrong command exits 2 with the usage", async () => {
    const error = await cli("dlq", "explode").catch((err: { code: number; stderr: string }) => err);
    expect(error).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/unknown command[\s\S]*usage: qbo-webhooks/),
    });
  });
});
