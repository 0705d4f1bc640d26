import { Buckets } from "@qbo-webhooks/contracts";
import { NatsClient, openBucket } from "@qbo-webhooks/messaging";
import { countedReads, NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import { createLogger } from "@qbo-webhooks/observability";
import { type Company, Sandbox } from "@qbo-webhooks/sandbox";
import { afterAll, beforeAll, expect, it } from "vitest";
import { QuickBooksClient } from "./quickbooks-client.js";
import { QuickBooksError } from "./quickbooks-error.js";
import { DEFAULT_RATE_LIMITS, RealmRateLimiter } from "./realm-rate-limiter.js";
import { SharedRealmBudget } from "./shared-realm-budget.js";

const logger = createLogger({ service: "test", level: "silent" });
let nats: NatsServerProcess;
let client: NatsClient;
let sandbox: Sandbox;
let company: Company;
let accessToken: string;

beforeAll(async () => {
  nats = await NatsServerProcess.start();
  client = await NatsClient.connect({ servers: [nats.url], name: "test", logger });
  sandbox = await Sandbox.start({ speed: 0 });
  sandbox.registerApp({ appId: "app", clientId: "client", clientSecret: "secret", verifierToken: "v" });
  company = sandbox.createCompany();
  company.create("Customer");
  accessToken = sandbox.connect("app", company.realmId).access_token;
});
afterAll(async () => {
  await sandbox?.close();
  await client?.drain();
  await nats?.dispose();
});

/** Two processes (a processor and the reconciler, say) reading one realm as fast as each may alone. */
async function twoProcesses(shared: () => SharedRealmBudget | undefined): Promise<number> {
  const make = () =>
    new QuickBooksClient({
      baseUrl: sandbox.url,
      tokens: { accessToken: async () => accessToken, refresh: async () => accessToken },
      logger,
      limiter: new RealmRateLimiter(DEFAULT_RATE_LIMITS, shared()),
      maxAttempts: 1,
    });
  let throttled = 0;
  await Promise.all(
    [make(), make()].map(async (api) => {
      for (let i = 0; i < 16; i++) {
        await api.query(company.realmId, "Customer", "select * from Customer").catch((err: unknown) => {
          if (err instanceof QuickBooksError && err.code === "QBO_THROTTLED") throttled++;
          else throw err;
        });
      }
    }),
  );
  return throttled;
}

it("shared budget - two processes within their own limits overrun the realm's 10/s together; sharing the budget in KV they do not (QBO.md §6)", {
  timeout: 30_000,
}, async () => {
  expect(await twoProcesses(() => undefined)).toBeGreaterThan(0);
  // QuickBooks' window moves on before the second run.
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const kv = await openBucket(client, Buckets.rateLimits, { replicas: 1 });
  expect(await twoProcesses(() => new SharedRealmBudget(kv, DEFAULT_RATE_LIMITS))).toBe(0);
});

it("shared budget - a process books after its own last booking without reading it again; another's booking in between is read, not overwritten", async () => {
  const kv = await openBucket(client, Buckets.rateLimits, { replicas: 1 });
  const counted = countedReads(kv);
  const limits = { perSecond: 100, perMinute: 6000 }; // 10 ms apart
  const mine = new SharedRealmBudget(counted.kv, limits);
  const theirs = new SharedRealmBudget(kv, limits);
  const realm = `budget-${Date.now()}`;
  const nextAt = async () => Number((await kv.get(realm))?.string());

  await mine.take(realm);
  await mine.take(realm);
  expect(counted.reads()).toBe(1);
  const afterMine = await nextAt();

  // Another process pushes the realm's next start 2 s out (as a 429 does); ours must start after it.
  await theirs.holdUntil(realm, afterMine + 2000);
  const started = Date.now();
  await mine.take(realm);
  expect(counted.reads()).toBe(2);
  expect(Date.now()).toBeGreaterThanOrEqual(afterMine + 2000 - 5);
  expect(Date.now() - started).toBeGreaterThan(1500);
  expect(await nextAt()).toBe(afterMine + 2000 + 10);
});
