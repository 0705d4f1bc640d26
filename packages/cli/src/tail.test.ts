import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { AckPolicy } from "@nats-io/jetstream";
import { Streams, Subjects } from "@qbo-webhooks/contracts";
import { consumerBacklog, ensureStream, NatsClient, publishDurable, VIEWER_IDLE_MS } from "@qbo-webhooks/messaging";
import { NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import { createLogger } from "@qbo-webhooks/observability";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// `qbo-webhooks tail` (what `npm run tail` runs) as a process on a real nats-server: it prints the
// feed, and a viewer leaves nothing on the server behind it, nor counts as the pipeline's backlog.
const MAIN = fileURLToPath(new URL("../dist/qbo-webhooks.mjs", import.meta.url));
const logger = createLogger({ service: "test", level: "silent" });

describe("qbo-webhooks tail", () => {
  let nats: NatsServerProcess;
  let client: NatsClient;
  let sequence = 0;

  beforeAll(async () => {
    nats = await NatsServerProcess.start();
    client = await NatsClient.connect({ servers: [nats.url], name: "test", logger });
    await ensureStream(client.jsm, Streams.changes, { replicas: 1 });
  });
  afterAll(async () => {
    await client?.drain();
    await nats?.dispose();
  });

  const publishChange = (realmId: string, syncToken: string) => {
    sequence++;
    const change = {
      realmId,
      entity: "Customer",
      id: "7",
      operation: "Update",
      occurredAt: "2026-11-01T10:00:00.000Z",
      appliedAt: "2026-11-01T10:00:00.250Z",
      version: { syncToken, lastUpdatedTime: "2026-11-01T10:00:00Z" },
      data: { Id: "7", SyncToken: syncToken },
    };
    return publishDurable(
      client,
      Subjects.changes(realmId, "Customer"),
      new TextEncoder().encode(JSON.stringify(change)),
      {
        msgId: `tail-${sequence}`,
        timeoutMs: 2000,
      },
    );
  };
  const consumers = async () => {
    const names: string[] = [];
    for await (const info of client.jsm.consumers.list(Streams.changes.name)) names.push(info.name);
    return names;
  };
  /** A tail process, once it says it follows; its stdout collected. */
  const startTail = async (...args: string[]) => {
    const child = spawn(process.execPath, [MAIN, "tail", "--nats", nats.url, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out = { text: "" };
    child.stdout?.on("data", (chunk: Buffer) => {
      out.text += chunk.toString();
    });
    let err = "";
    await new Promise<void>((resolve, reject) => {
      child.stderr?.on("data", (chunk: Buffer) => {
        err += chunk.toString();
        if (err.includes("following QBO_CHANGES")) resolve();
      });
      child.once("exit", (code) => reject(new Error(`tail exited ${code}: ${err}`)));
    });
    return { child, out };
  };
  const exited = (child: ChildProcess) =>
    child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : once(child, "exit").then(() => undefined);

  it("tail - prints each change of the realm asked for as it arrives, keeps following past the idle time, and on Ctrl-C leaves no consumer behind", async () => {
    const { child, out } = await startTail("--realm", "111");
    expect(await consumers()).toHaveLength(1);
    await publishChange("111", "1");
    await publishChange("222", "1");
    await expect
      .poll(() => out.text, { timeout: 5000 })
      .toMatch(/realm 111\s+Update\s+Customer 7\s+SyncToken 1\s+\(\+0\.25s\)/);
    // Quiet for longer than a dead viewer is kept: a live one still follows.
    await new Promise((resolve) => setTimeout(resolve, VIEWER_IDLE_MS + 2000));
    await publishChange("111", "2");
    await expect.poll(() => out.text, { timeout: 5000 }).toMatch(/SyncToken 2/);
    expect(out.text).not.toMatch(/realm 222/);
    child.kill("SIGINT");
    await exited(child);
    expect(child.exitCode).toBe(0);
    expect(await consumers()).toEqual([]);
  }, 30_000);

  it("tail - a tail killed with -9 leaves its consumer no longer than the idle time, and a viewer is never counted as backlog", async () => {
    // A durable consumer, as the pipeline's own are.
    await client.jsm.consumers.add(Streams.changes.name, {
      durable_name: "app-delivery-test",
      ack_policy: AckPolicy.Explicit,
      filter_subjects: [Subjects.changes("*", "*")],
    });
    const { child, out } = await startTail("--all");
    for (let i = 0; i < 5; i++) await publishChange("333", String(i + 10));
    await expect.poll(() => out.text, { timeout: 5000 }).toMatch(/SyncToken 14/);
    expect(await consumers()).toHaveLength(2);
    const backlog = await consumerBacklog(client, [Streams.changes.name]);
    expect(backlog.map(({ consumer }) => consumer)).toEqual(["app-delivery-test"]);
    child.kill("SIGKILL");
    await exited(child);
    const killedAt = performance.now();
    await expect
      .poll(async () => (await consumers()).filter((name) => name !== "app-delivery-test"), {
        timeout: VIEWER_IDLE_MS + 10_000,
        interval: 250,
      })
      .toEqual([]);
    expect(performance.now() - killedAt).toBeLessThan(VIEWER_IDLE_MS + 10_000);
  }, 40_000);
});
