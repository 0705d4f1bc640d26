import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { AppliedChange, Buckets, type DlqStage, Streams } from "@qbo-webhooks/contracts";
import { type KV, NatsClient, openBucket } from "@qbo-webhooks/messaging";
import { NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import { createLogger } from "@qbo-webhooks/observability";
import { issuedTokensOf, KvTokenSource, TokenCipher } from "@qbo-webhooks/quickbooks";
import { type Company, Sandbox, seededRandom, TrafficGenerator } from "@qbo-webhooks/sandbox";
import type { ListenAddress } from "@qbo-webhooks/service-kit";
import { z } from "zod";
import type { ProcessorConfig } from "../config.js";
import { type AppReceiver, DELIVERY_SECRET } from "./app-receiver.js";
import { startIntakeInProcess, startIntakeProcesses } from "./intake.js";

export const logger = createLogger({
  service: "pipeline-test",
  level: (process.env.TEST_LOG_LEVEL ?? "silent") as "silent",
});
const TOKEN = "pipeline-verifier";
export const PARTITIONS = 8;
const CLI = fileURLToPath(new URL("../../../../packages/cli/dist/qbo-webhooks.mjs", import.meta.url));
const execFileAsync = promisify(execFile);
/** What `qbo-webhooks dlq list --json` prints, as far as tests read it. */
const ListedLetters = z.array(z.object({ seq: z.number(), stage: z.string(), reason: z.string() }));
export type ListedLetter = z.infer<typeof ListedLetters>[number];

/**
 * The pipeline around the processor, for end-to-end tests and benchmarks: a real nats-server, the sandbox with
 * connected companies (three by default; tokens stored as the reconciler will), the ingress and ordering.
 */
export async function startPipeline(
  options: {
    realms?: number;
    partitions?: number;
    policy?: "current" | "legacy";
    /** Nodes of a NATS cluster on loopback (fsync before every PubAck, 3 replicas); one plain server if unset. */
    cluster?: number;
    /** How many times faster than real time the sandbox's clock runs (QuickBooks' retries, token expiry). */
    speed?: number;
    /** The ingress and ordering as processes of their own, as in production (the fault suite); else in this one. */
    processes?: boolean;
  } = {},
) {
  const partitions = options.partitions ?? PARTITIONS;
  const key = randomBytes(32);
  const natsNodes = options.cluster
    ? await NatsServerProcess.startCluster(options.cluster, { syncAlways: true })
    : [await NatsServerProcess.start()];
  const [nats] = natsNodes;
  if (!nats) throw new Error("no nats-server");
  const natsServers = natsNodes.map((node) => node.url);
  const replicas = Math.min(3, natsNodes.length);
  const reader = await NatsClient.connect({ servers: natsServers, name: "reader", logger });
  // A cluster answers JetStream requests once it has elected its meta leader.
  await untilAnswers(() => reader.jsm.getAccountInfo(), 30_000);
  const sandbox = await Sandbox.start({ seed: 21, ...(options.speed ? { speed: options.speed } : {}) });
  const intakeOptions = { natsServers, verifierToken: TOKEN, partitions, streamReplicas: replicas };
  const intake = options.processes
    ? await startIntakeProcesses(intakeOptions)
    : await startIntakeInProcess(intakeOptions, logger);
  sandbox.registerApp({
    appId: "app",
    clientId: "client",
    clientSecret: "secret",
    verifierToken: TOKEN,
    endpointUrl: `http://127.0.0.1:${intake.ingress.port}/webhooks/quickbooks`,
    policy: options.policy ?? "current",
  });
  const tokens = new KvTokenSource(await openBucket(reader, Buckets.tokens, { replicas }), new TokenCipher(key), {
    tokenUrl: `${sandbox.url}/oauth2/v1/tokens/bearer`,
    revokeUrl: `${sandbox.url}/v2/oauth2/tokens/revoke`,
    clientId: "client",
    clientSecret: "secret",
  });
  const realms: Company[] = Array.from({ length: options.realms ?? 3 }, () => sandbox.createCompany());
  /** Consent given (again): the company's tokens stored as the reconciler stores them. */
  const connect = async (realmId: string) =>
    tokens.save(realmId, issuedTokensOf(sandbox.connect("app", realmId), sandbox.clock.now()));
  for (const company of realms) await connect(company.realmId);
  const entities: KV = await openBucket(reader, Buckets.entities, { replicas });

  /** Our copy, as realm → "Entity/id" → SyncToken. */
  const copy = async (): Promise<Record<string, Record<string, string>>> => {
    const result: Record<string, Record<string, string>> = {};
    for await (const entryKey of await entities.keys()) {
      const entry = await entities.get(entryKey);
      if (entry?.operation !== "PUT") continue;
      const [realmId = "", entity = ""] = entryKey.split(".");
      const data = entry.json<{ Id: string; SyncToken: string }>();
      result[realmId] = { ...result[realmId], [`${entity}/${data.Id}`]: data.SyncToken };
    }
    return result;
  };

  /** QuickBooks' ground truth in the same shape. */
  const truth = (): Record<string, Record<string, string>> => {
    const result: Record<string, Record<string, string>> = {};
    for (const company of realms) {
      const entries: Record<string, string> = {};
      for (const [entity, byId] of Object.entries(company.snapshot())) {
        for (const [id, data] of Object.entries(byId ?? {})) entries[`${entity}/${id}`] = data.SyncToken;
      }
      if (Object.keys(entries).length) result[company.realmId] = entries;
    }
    return result;
  };

  /** Traffic driven by hand (`step(n)` makes n changes now), seeded so runs repeat; `skew: 0` spreads it evenly. */
  const steppedTraffic = (seed: number, options: { realms?: Company[]; skew?: number } = {}) =>
    new TrafficGenerator({
      realms: options.realms ?? realms,
      ratePerSecond: 0,
      random: seededRandom(seed),
      burstProbability: 0,
      ...(options.skew === undefined ? {} : { skew: options.skew }),
    });

  /** Makes `changes` changes in rounds of 30 (each round one or more notifications). */
  const traffic = async (changes: number, seed: number) => {
    const generator = steppedTraffic(seed);
    for (let round = 0; round < changes / 30; round++) {
      generator.step(30);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  /** A replica's configuration; `delivery` POSTs its changes to an app (see `startAppReceiver`). */
  const processorConfig = (
    id: string,
    fetchStrategy: ProcessorConfig["fetchStrategy"] = "cdc",
    delivery?: { url: string; retryForMs?: number },
  ): ProcessorConfig => ({
    ...(delivery
      ? {
          delivery: {
            url: delivery.url,
            secret: DELIVERY_SECRET,
            timeoutMs: 2000,
            retryForMs: delivery.retryForMs ?? 24 * 3600_000,
            retryCapMs: 1000,
          },
        }
      : {}),
    fetchStrategy,
    natsServers,
    ops: loopback(0),
    partitions,
    environment: "sandbox",
    apiBaseUrl: sandbox.url,
    tokenUrl: `${sandbox.url}/oauth2/v1/tokens/bearer`,
    revokeUrl: `${sandbox.url}/v2/oauth2/tokens/revoke`,
    authorizeUrl: `${sandbox.url}/connect/oauth2`,
    impliedByApiBaseUrl: [],
    clientId: "client",
    clientSecret: "secret",
    tokenKey: key,
    leaseTtlMs: 3000,
    coalesceMs: 100,
    maxConcurrentRealms: 16,
    maxAttempts: 6,
    retryBaseMs: 50,
    throttleWaitMs: 500,
    processorId: id,
    streamReplicas: replicas,
    shutdownDeadlineMs: 8000,
    logLevel: "silent",
    exportTraces: false,
  });

  /** The same configuration as environment variables, for a processor process. */
  const processorEnv = (id: string, deliveryUrl?: string): Record<string, string> => ({
    ...(deliveryUrl
      ? { DELIVERY_URL: deliveryUrl, DELIVERY_SECRET, DELIVERY_TIMEOUT_MS: "2000", DELIVERY_RETRY_MAX_MS: "1000" }
      : {}),
    NATS_URL: natsServers.join(","),
    NATS_STREAM_REPLICAS: String(replicas),
    OPS_PORT: "0",
    OPS_HOST: "127.0.0.1",
    PARTITIONS: String(partitions),
    QBO_ENVIRONMENT: "sandbox",
    QBO_API_BASE_URL: sandbox.url,
    QBO_CLIENT_ID: "client",
    QBO_CLIENT_SECRET: "secret",
    TOKEN_ENCRYPTION_KEY: key.toString("base64"),
    LEASE_TTL_MS: "3000",
    COALESCE_MS: "100",
    RETRY_BASE_MS: "50",
    THROTTLE_WAIT_MS: "500",
    PROCESSOR_ID: id,
    LOG_LEVEL: "warn",
  });

  /** Per entity, the SyncTokens QBO_CHANGES holds, in stream order. */
  const changeHistories = async (): Promise<Map<string, number[]>> => {
    const info = await reader.jsm.streams.info(Streams.changes.name);
    const histories = new Map<string, number[]>();
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const msg = await reader.jsm.streams.getMessage(Streams.changes.name, { seq });
      const change = msg ? AppliedChange.parse(msg.json()) : undefined;
      if (!change?.data) continue;
      const key = `${change.realmId}/${change.entity}/${change.id}`;
      histories.set(key, [...(histories.get(key) ?? []), Number(change.data.SyncToken)]);
    }
    return histories;
  };

  /**
   * What an app following QBO_CHANGES from the start ends with, in the shape of `copy`: each
   * change replaces the entity, each removal deletes it.
   */
  const feedCopy = async (): Promise<Record<string, Record<string, string>>> => {
    const info = await reader.jsm.streams.info(Streams.changes.name);
    const state = new Map<string, string>();
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const msg = await reader.jsm.streams.getMessage(Streams.changes.name, { seq });
      if (!msg) continue;
      const change = AppliedChange.parse(msg.json());
      const key = `${change.realmId}/${change.entity}/${change.id}`;
      if (change.version) state.set(key, change.version.syncToken);
      else state.delete(key);
    }
    const result: Record<string, Record<string, string>> = {};
    for (const [key, syncToken] of state) {
      const [realmId = "", entity = "", id = ""] = key.split("/");
      result[realmId] = { ...result[realmId], [`${entity}/${id}`]: syncToken };
    }
    return result;
  };

  const close = async () => {
    await intake.close();
    await sandbox.close();
    await reader.drain();
    await Promise.all(natsNodes.map((node) => node.dispose()));
  };

  /**
   * What users see: our copy, what an app following the feed ends with, and, given one, what an app
   * receiving the deliveries ends with and how they misled it; plus the entities whose versions in
   * the feed are not each once and ascending. Compare with `exactOutputs` (`expect.poll`).
   */
  const outputs = async (app?: AppReceiver) => ({
    copy: await copy(),
    feed: await feedCopy(),
    feedOutOfOrder: [...(await changeHistories())]
      .filter(([, versions]) => versions.some((version, i) => i > 0 && version <= (versions[i - 1] ?? -1)))
      .map(([key, versions]) => `${key}: ${versions.join(",")}`),
    ...(app ? { app: app.copy(), appProblems: [...app.problems] } : {}),
  });
  /** `outputs` as they are when every change QuickBooks made reached every user, once and in order. */
  const exactOutputs = (app?: AppReceiver) => {
    const expected = truth();
    return { copy: expected, feed: expected, feedOutOfOrder: [], ...(app ? { app: expected, appProblems: [] } : {}) };
  };

  /** `qbo-webhooks <args>` as a user runs it, a process of its own on this pipeline's NATS; never throws. */
  const cli = (env: Record<string, string>, ...args: string[]) =>
    execFileAsync(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH ?? "", NATS_URL: natsServers.join(","), ...env },
    }).then(
      (ok) => ({ code: 0, ...ok }),
      (err: { code: number; stdout: string; stderr: string }) => err,
    );

  /** One stage's dead letters as `qbo-webhooks dlq list --stage <stage> --json` lists them. @throws when it fails. */
  const deadLetters = async (stage: DlqStage): Promise<ListedLetter[]> => {
    const listed = await cli({}, "dlq", "list", "--stage", stage, "--json");
    if (listed.code !== 0) throw new Error(`dlq list exited ${listed.code}: ${listed.stderr}`);
    return ListedLetters.parse(JSON.parse(listed.stdout));
  };

  return {
    nats,
    /** Every node; one unless started as a cluster. */
    natsNodes,
    /** The app's verifier token: what signs notifications posted to the ingress by hand. */
    verifierToken: TOKEN,
    reader,
    sandbox,
    get ingress() {
      return intake.ingress;
    },
    ordering: intake.ordering,
    /** The ingress and ordering processes, when started with `processes: true`. */
    services: intake.processes,
    stopIngress: () => intake.stopIngress(),
    restoreIngress: () => intake.restoreIngress(),
    realms,
    copy,
    truth,
    traffic,
    steppedTraffic,
    changeHistories,
    feedCopy,
    processorConfig,
    processorEnv,
    outputs,
    exactOutputs,
    connect,
    cli,
    deadLetters,
    close,
  };
}

export type Pipeline = Awaited<ReturnType<typeof startPipeline>>;

/** Tests listen on loopback only. */
export function loopback(port: number): ListenAddress {
  return { port, host: "127.0.0.1" };
}

async function untilAnswers(request: () => Promise<unknown>, limitMs: number): Promise<void> {
  const deadline = performance.now() + limitMs;
  for (;;) {
    try {
      await request();
      return;
    } catch (err) {
      if (performance.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}
