import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  Buckets,
  companyConditions,
  type DlqStage,
  Headers,
  PARTITIONS_METADATA,
  partitionOf,
  Streams,
  Subjects,
} from "@qbo-webhooks/contracts";
import { RealmRegistry } from "@qbo-webhooks/entity-store";
import { ensureStream, NatsClient, openBucket, publishDurable } from "@qbo-webhooks/messaging";
import { NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import { createLogger } from "@qbo-webhooks/observability";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const MAIN = fileURLToPath(new URL("../dist/qbo-webhooks.mjs", import.meta.url));
const run = promisify(execFile);
const logger = createLogger({ service: "test", level: "silent" });

describe("qbo-webhooks dlq", () => {
  let nats: NatsServerProcess;
  let client: NatsClient;
  const cli = (...args: string[]) => run(process.execPath, [MAIN, ...args, "--nats", nats.url]);
  /** What the running system uses (as `npm start` does), not the CLI's idea of a default. */
  const PARTITIONS = 16;
  const change = {
    realmId: "123",
    entity: "Customer",
    id: "9",
    operation: "Update",
    occurredAt: "2026-11-01T10:00:00.000Z",
    appliedAt: "2026-11-01T10:00:01.000Z",
    version: { syncToken: "3", lastUpdatedTime: "2026-11-01T10:00:00Z" },
    data: { Id: "9", SyncToken: "3" },
  };

  beforeAll(async () => {
    nats = await NatsServerProcess.start();
    client = await NatsClient.connect({ servers: [nats.url], name: "test", logger });
    for (const spec of [Streams.webhooks, Streams.deliveries, Streams.dlq])
      await ensureStream(client.jsm, spec, { replicas: 1 });
    await ensureStream(
      client.jsm,
      Streams.events,
      { replicas: 1 },
      { pins: { [PARTITIONS_METADATA]: String(PARTITIONS) } },
    );
    const letter = (stage: DlqStage, body: string, reason: string, headers: Record<string, string> = {}) =>
      publishDurable(client, Subjects.dlq(stage), new TextEncoder().encode(body), {
        msgId: `${stage}-${body.length}`,
        timeoutMs: 2000,
        headers: { ...headers, [Headers.dlqStage]: stage, [Headers.dlqReason]: reason },
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
    await letter("ordering", '{"realmId":"123","events":[]}', "not CDC findings", { [Headers.payloadForm]: "cdc" });
    await letter("delivery", JSON.stringify(change), "the app answered 503", {
      [Headers.webhookId]: "123.Customer.9.v3",
      [Headers.realmSequence]: "41",
    });
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

  it("dlq - a letter that does not exist is one line and exit 1, not a usage error", async () => {
    const error = await cli("dlq", "show", "99").catch((err: { code: number; stderr: string }) => err);
    expect(error).toMatchObject({ code: 1, stderr: "qbo-webhooks: no dead letter 99; see qbo-webhooks dlq list\n" });
  });

  it("dlq - replays each stage's letters where that stage reads, routed by the system's partition count, with the headers it needs", async () => {
    const { stdout } = await cli("dlq", "replay", "--all", "--json");
    expect(JSON.parse(stdout)).toEqual([
      { seq: 1, subject: Subjects.webhooks },
      { seq: 2, subject: Subjects.events(partitionOf("123", PARTITIONS), "123") },
      { seq: 3, subject: Subjects.webhooks },
      { seq: 4, subject: Subjects.deliveryReplays(partitionOf("123", PARTITIONS), "123") },
    ]);
    expect((await client.jsm.streams.info(Streams.dlq.name)).state.messages).toBe(0);
    const replayed = await client.jsm.streams.getMessage(Streams.webhooks.name, { seq: 1 });
    expect(replayed?.string()).toBe('{"future":"format"}');
    // A CDC finding keeps its payload form, or ordering would take it for a notification it cannot read.
    const cdc = await client.jsm.streams.getMessage(Streams.webhooks.name, { last_by_subj: Subjects.webhooks });
    expect(cdc?.header.get(Headers.payloadForm)).toBe("cdc");
    // An undelivered change keeps the webhook-id the app deduplicates by, and its place in the realm's order.
    const delivery = await client.jsm.streams.getMessage(Streams.deliveries.name, {
      last_by_subj: Subjects.deliveryReplays(partitionOf("123", PARTITIONS), "123"),
    });
    expect(delivery?.header.get(Headers.webhookId)).toBe("123.Customer.9.v3");
    expect(delivery?.header.get(Headers.realmSequence)).toBe("41");
    expect((await cli("dlq", "list")).stdout.trim()).toBe("no dead letters");
  });

  it("dlq - a wrong command or flag exits 2 with one line saying what is wrong and the usage, never a stack trace", async () => {
    for (const args of [
      ["dlq", "explode"],
      ["dlq", "list", "--colour"],
      ["dlq", "show", "x"],
      ["dlq", "list", "--stage", "nope"],
    ]) {
      const error = await cli(...args).catch((err: { code: number; stderr: string }) => err);
      expect(error, args.join(" ")).toMatchObject({
        code: 2,
        stderr: expect.stringMatching(/^qbo-webhooks: .+\n[\s\S]*usage/i),
      });
      expect((error as { stderr: string }).stderr).not.toMatch(/\n\s+at /);
    }
  });
});

describe("qbo-webhooks --help", () => {
  const help = (...args: string[]) => run(process.execPath, [MAIN, ...args]);
  it("help - the command and every subcommand answer --help and -h with a usage line, options and exit 0", async () => {
    const pages = [
      [],
      ["realms"],
      ["realms", "list"],
      ["realms", "connect"],
      ["realms", "disconnect"],
      ["realms", "cdc"],
      ["dlq"],
      ["dlq", "list"],
      ["dlq", "show"],
      ["dlq", "replay"],
      ["send-test-notification"],
      ["status"],
      ["tail"],
    ];
    // Each page is a CLI start of its own: all at once, to keep the suite short.
    const outputs = await Promise.all(pages.map((words) => help(...words, words.length % 2 ? "-h" : "--help")));
    for (const [i, { stdout }] of outputs.entries()) {
      const words = pages[i] ?? [];
      expect(stdout, words.join(" ")).toMatch(new RegExp(`^Usage: qbo-webhooks ${words.join(" ")}`));
      expect(stdout, words.join(" ")).toMatch(/Options:/);
    }
    const { stdout } = await help("--help");
    expect(stdout).toMatch(/Examples:/);
    expect(stdout).toMatch(/Exit codes: 0 done, 1 failed/);
  });

  it("help - a reader that closes the pipe before we write (| true, as | head does) ends the command quietly, exit 0", async () => {
    // pipefail: the pipeline's status is the CLI's; `true` exits before Node has started.
    const { stderr } = await run("bash", ["-o", "pipefail", "-c", `"${process.execPath}" "${MAIN}" --help | true`]);
    expect(stderr).toBe("");
  });
});

describe("qbo-webhooks realms", () => {
  let nats: NatsServerProcess;
  let client: NatsClient;
  let realms: RealmRegistry;
  const cli = (...args: string[]) => run(process.execPath, [MAIN, ...args, "--nats", nats.url]);

  beforeAll(async () => {
    nats = await NatsServerProcess.start();
    client = await NatsClient.connect({ servers: [nats.url], name: "test", logger });
    realms = new RealmRegistry(await openBucket(client, Buckets.realms, { replicas: 1 }));
    for (const realmId of ["111", "222"]) {
      await realms.update(realmId, () => ({
        realmId,
        environment: "sandbox",
        entities: ["Customer", "Invoice"],
        connectedAt: Date.parse("2026-11-20T10:00:00Z"),
        status: "connected",
        lastWebhookAt: Date.parse("2026-11-23T09:00:00Z"),
        // As the leader keeps them (company-conditions); the list shows the same as `kubectl get qbo`.
        conditions: companyConditions(
          {
            realmId,
            environment: "sandbox",
            entities: ["Customer"],
            connectedAt: 0,
            status: "connected",
            paused: realmId === "222",
          },
          undefined,
          { now: Date.parse("2026-11-23T09:00:00Z"), silenceMs: 60_000 },
        ),
      }));
    }
  });
  afterAll(async () => {
    await client?.drain();
    await nats?.dispose();
  });

  it("realms - lists companies with status and last webhook, as text and as JSON", async () => {
    const { stdout } = await cli("realms", "list");
    expect(stdout).toMatch(/^realm\s+status/);
    expect(stdout).toMatch(/^realm\s+status\s+ready\s+connected\s+caught up/);
    expect(stdout).toMatch(
      /111\s+connected\s+False \(CatchUpPending\)\s+True\s+False \(CatchUpPending\)\s+2\s+2026-11-23T09:00:00Z/,
    );
    expect(stdout).toMatch(/222\s+connected\s+False \(Paused\)/);
    expect(JSON.parse((await cli("realms", "list", "--json")).stdout)).toHaveLength(2);
  });

  it("status - on a NATS where no service has created the streams, it says so (exit 1)", async () => {
    const error = await cli("status").catch((err: { code: number; stderr: string }) => err);
    expect(error).toMatchObject({ code: 1, stderr: expect.stringMatching(/QBO_WEBHOOKS.*has a service started/) });
  });

  it("realms - cdc --no-wait asks the reconciler for a CDC of the realm", async () => {
    await cli("realms", "cdc", "111", "--no-wait");
    expect((await realms.get("111"))?.cdcRequestedAt).toBeGreaterThan(0);
  });

  it("realms - cdc waits for the leader's run and reports it; without a reconciler it times out clearly", async () => {
    const error = await cli("realms", "cdc", "222", "--timeout", "1").catch(
      (err: { code: number; stderr: string }) => err,
    );
    expect(error).toMatchObject({ code: 1, stderr: expect.stringMatching(/did not finish within 1 s/) });
    // A leader finishing the run: the request is cleared and the run recorded.
    const asked = Date.now();
    const waiting = cli("realms", "cdc", "222", "--json", "--timeout", "20");
    await expect
      .poll(async () => (await realms.get("222"))?.cdcRequestedAt ?? 0, { timeout: 10_000 })
      .toBeGreaterThan(asked);
    await realms.update("222", (r) => {
      if (!r) return undefined;
      const { cdcRequestedAt: _done, ...rest } = r;
      return { ...rest, lastCdcAt: Date.now(), lastCdcResult: "succeeded", verifiedUntil: Date.now() };
    });
    expect(JSON.parse((await waiting).stdout)).toMatchObject({ realmId: "222", lastCdcResult: "succeeded" });
  });

  it("realms - disconnect marks the realm and forgets its tokens; unknown realms are named", async () => {
    await cli("realms", "disconnect", "222");
    expect(await realms.get("222")).toMatchObject({ status: "disconnected", statusReason: /operator/ });
    const error = await cli("realms", "cdc", "999").catch((err: { code: number; stderr: string }) => err);
    expect(error).toMatchObject({ code: 1, stderr: expect.stringMatching(/no realm 999/) });
  });

  it("realms - connect prints the reconciler's connect URL", async () => {
    const { stdout } = await cli(
      "realms",
      "connect",
      "--reconciler",
      "http://rec.example:8083",
      "--entities",
      "Customer",
    );
    expect(stdout).toContain("http://rec.example:8083/connect?entities=Customer");
  });
});
