import { randomBytes } from "node:crypto";
import { type AppliedChange, Buckets, Streams } from "@qbo-webhooks/contracts";
import { type IngressService, startIngress } from "@qbo-webhooks/ingress/service";
import { type KV, NatsClient, openBucket } from "@qbo-webhooks/messaging";
import { NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import { createLogger } from "@qbo-webhooks/observability";
import { type OrderingService, startOrdering } from "@qbo-webhooks/ordering/service";
import { KvTokenSource, TokenCipher } from "@qbo-webhooks/quickbooks";
import { type Company, Sandbox, seededRandom, TrafficGenerator } from "@qbo-webhooks/sandbox";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProcessorConfig } from "./config.js";
import { type ProcessorService, startProcessor } from "./processor-service.js";
import type { ProcessorHooks } from "./realm-batch.js";

const logger = createLogger({ service: "pipeline-test", level: (process.env.TEST_LOG_LEVEL ?? "silent") as "silent" });
const TOKEN = "pipeline-verifier";
const PARTITIONS = 8;
const KEY = randomBytes(32);

describe("pipeline: sandbox → ingress → ordering → processor", () => {
  let nats: NatsServerProcess;
  let reader: NatsClient;
  let sandbox: Sandbox;
  let ingress: IngressService;
  let ordering: OrderingService;
  let entities: KV;
  const processors: ProcessorService[] = [];
  let realms: Company[];
  /** Batches under way per realm, across every replica: never more than one. */
  const running = new Map<string, number>();
  let overlaps = 0;
  const tracker: ProcessorHooks = {
    batchStarted: (realmId) => {
      const now = (running.get(realmId) ?? 0) + 1;
      if (now > 1) overlaps++;
      running.set(realmId, now);
    },
    batchEnded: (realmId) => running.set(realmId, (running.get(realmId) ?? 1) - 1),
  };
  const startReplica = async (id: string) => {
    const processor = await startProcessor(processorConfig(id), logger, tracker);
    processors.push(processor);
    return processor;
  };

  const processorConfig = (id: string): ProcessorConfig => ({
    natsServers: [nats.url],
    httpPort: 0,
    partitions: PARTITIONS,
    apiBaseUrl: sandbox.url,
    tokenUrl: `${sandbox.url}/oauth2/v1/tokens/bearer`,
    clientId: "client",
    clientSecret: "secret",
    tokenKey: KEY,
    leaseTtlMs: 3000,
    coalesceMs: 100,
    maxAttempts: 6,
    retryBaseMs: 50,
    throttleWaitMs: 500,
    processorId: id,
    streamReplicas: 1,
    shutdownDeadlineMs: 8000,
    logLevel: "silent",
    exportTraces: false,
  });

  beforeAll(async () => {
    nats = await NatsServerProcess.start();
    reader = await NatsClient.connect({ servers: [nats.url], name: "reader", logger });
    sandbox = await Sandbox.start({ seed: 21 });
    ingress = await startIngress(
      {
        natsServers: [nats.url],
        httpPort: 0,
        verifierTokens: [TOKEN],
        maxBodyBytes: 4 * 1024 * 1024,
        publishTimeoutMs: 2000,
        streamReplicas: 1,
        shutdownDeadlineMs: 8000,
        logLevel: "silent",
        exportTraces: false,
      },
      logger,
    );
    await ingress.ready;
    ordering = await startOrdering(
      {
        natsServers: [nats.url],
        httpPort: 0,
        partitions: PARTITIONS,
        maxAttempts: 5,
        streamReplicas: 1,
        shutdownDeadlineMs: 8000,
        logLevel: "silent",
        exportTraces: false,
      },
      logger,
    );
    sandbox.registerApp({
      appId: "app",
      clientId: "client",
      clientSecret: "secret",
      verifierToken: TOKEN,
      endpointUrl: `http://127.0.0.1:${ingress.port}/webhooks/quickbooks`,
    });
    const tokens = new KvTokenSource(await openBucket(reader, Buckets.tokens, { replicas: 1 }), new TokenCipher(KEY), {
      tokenUrl: `${sandbox.url}/oauth2/v1/tokens/bearer`,
      clientId: "client",
      clientSecret: "secret",
    });
    realms = [sandbox.createCompany(), sandbox.createCompany(), sandbox.createCompany()];
    for (const company of realms) {
      const set = sandbox.connect("app", company.realmId);
      await tokens.save(company.realmId, {
        accessToken: set.access_token,
        refreshToken: set.refresh_token,
        accessExpiresAt: sandbox.clock.now() + set.expires_in * 1000,
        refreshExpiresAt: sandbox.clock.now() + set.x_refresh_token_expires_in * 1000,
      });
    }
    entities = await openBucket(reader, Buckets.entities, { replicas: 1 });
  });

  afterAll(async () => {
    for (const processor of processors) await processor.close();
    await ordering?.close();
    await ingress?.close();
    await sandbox?.close();
    await reader?.drain();
    await nats?.dispose();
  });

  /** Our copy, as realm → "Entity/id" → SyncToken. */
  async function copy(): Promise<Record<string, Record<string, string>>> {
    const result: Record<string, Record<string, string>> = {};
    for await (const key of await entities.keys()) {
      const entry = await entities.get(key);
      if (entry?.operation !== "PUT") continue;
      const [realmId = "", entity = ""] = key.split(".");
      const data = entry.json<{ Id: string; SyncToken: string }>();
      result[realmId] = { ...result[realmId], [`${entity}/${data.Id}`]: data.SyncToken };
    }
    return result;
  }

  function truth(): Record<string, Record<string, string>> {
    const result: Record<string, Record<string, string>> = {};
    for (const company of realms) {
      const entries: Record<string, string> = {};
      for (const [entity, byId] of Object.entries(company.snapshot())) {
        for (const [id, data] of Object.entries(byId ?? {})) entries[`${entity}/${id}`] = data.SyncToken;
      }
      if (Object.keys(entries).length) result[company.realmId] = entries;
    }
    return result;
  }

  async function trafficThenExactCopy(changes: number, seed: number, timeout = 30_000) {
    const traffic = new TrafficGenerator({ realms, ratePerSecond: 0, random: seededRandom(seed), burstProbability: 0 });
    for (let round = 0; round < changes / 30; round++) {
      traffic.step(30);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const expected = truth();
    await expect.poll(copy, { timeout, interval: 500 }).toEqual(expected);
  }

  it("pipeline - duplicated, reordered and delayed webhooks end as an exact copy of QuickBooks", async () => {
    await startReplica("p1");
    sandbox.setWebhookFaults("app", [
      { kind: "duplicate", percent: 20 },
      { kind: "reorder", percent: 10 },
      { kind: "delay", percent: 10, delayMs: 1500 },
    ]);
    const traffic = new TrafficGenerator({ realms, ratePerSecond: 0, random: seededRandom(4), burstProbability: 0 });
    for (let round = 0; round < 10; round++) {
      traffic.step(30);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const expected = truth();
    expect(Object.values(expected).flatMap(Object.keys).length).toBeGreaterThan(50);
    await expect.poll(copy, { timeout: 30_000, interval: 500 }).toEqual(expected);
  });

  it("pipeline - QBO_CHANGES holds each entity's changes in order", async () => {
    const info = await reader.jsm.streams.info(Streams.changes.name);
    const last = new Map<string, number>();
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const msg = await reader.jsm.streams.getMessage(Streams.changes.name, { seq });
      const change = msg?.json<AppliedChange>();
      if (!change?.data) continue;
      const key = `${change.realmId}/${change.entity}/${change.id}`;
      const version = Number(change.data.SyncToken);
      expect(version, key).toBeGreaterThan(last.get(key) ?? -1);
      last.set(key, version);
    }
    expect(last.size).toBeGreaterThan(10);
  });

  it("pipeline - a second processor takes half the partitions, and all of them back when the first stops", async () => {
    await startReplica("p2");
    const [first, second] = processors as [ProcessorService, ProcessorService];
    await expect.poll(() => [first.owned().length, second.owned().length], { timeout: 15_000 }).toEqual([4, 4]);
    expect(new Set([...first.owned(), ...second.owned()]).size).toBe(PARTITIONS);
    await first.close();
    processors.shift();
    await expect.poll(() => second.owned().length, { timeout: 15_000 }).toBe(PARTITIONS);
  });

  it("pipeline - three replicas share the realms and never process one realm at once", async () => {
    await startReplica("p3");
    await startReplica("p4");
    await expect.poll(() => processors.map((p) => p.owned().length).sort(), { timeout: 15_000 }).toEqual([2, 3, 3]);
    await trafficThenExactCopy(300, 5);
    expect(overlaps).toBe(0);
  });

  it("pipeline - a 429 storm and 5xx bursts slow it down but lose nothing (QBO.md §6, §8)", {
    timeout: 90_000,
  }, async () => {
    sandbox.setApiBehaviour({ requestsPerSecond: 3, serverErrors: [{ status: 503, percent: 20 }] });
    try {
      await trafficThenExactCopy(150, 6, 60_000);
      const stats = sandbox.apiStats();
      expect(Object.values(stats.throttled).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
      expect(Object.values(stats.serverErrors).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    } finally {
      sandbox.setApiBehaviour({});
    }
  });

  it("pipeline - a revoked realm's events are dead-lettered with the reason; the others go on", {
    timeout: 60_000,
  }, async () => {
    const [open, , revoked] = realms as [Company, Company, Company];
    // Tokens dead, webhooks still flowing: e.g. a refresh token left unused past its 100 days.
    sandbox.oauth.revokeCompany("app", revoked.realmId);
    revoked.create("Customer");
    const kept = open.create("Vendor");
    await expect.poll(async () => (await copy())[open.realmId]?.[`Vendor/${kept.Id}`], { timeout: 20_000 }).toBe("0");
    await expect
      .poll(
        async () =>
          (
            await reader.jsm.streams
              .getMessage(Streams.dlq.name, { last_by_subj: "qbo.dlq.processor" })
              .catch(() => null)
          )?.header.get("Qbo-Dlq-Reason"),
        { timeout: 40_000 },
      )
      .toMatch(/QBO_UNAUTHORIZED/);
  });
});
