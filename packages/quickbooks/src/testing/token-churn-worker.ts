/**
 * A test process that refreshes tokens the ways our services do, as fast as it can: `keeper`
 * refreshes ahead of expiry as the reconciler's token keeper does (here: always), `reader` calls
 * QuickBooks and refreshes after a 401 as the processor does. It prints one JSON line per outcome
 * and stops cleanly on SIGTERM. Used by token-churn.test.ts, which kills it at random.
 */
import { Buckets } from "@qbo-webhooks/contracts";
import { NatsClient, openBucket } from "@qbo-webhooks/messaging";
import { createLogger } from "@qbo-webhooks/observability";
import { z } from "zod";
import { KvTokenSource } from "../kv-token-source.js";
import { QuickBooksClient } from "../quickbooks-client.js";
import { QuickBooksError } from "../quickbooks-error.js";
import { TokenCipher } from "../token-cipher.js";

const Env = z.object({
  NATS_URL: z.string(),
  SANDBOX_URL: z.url(),
  TOKEN_KEY: z.base64(),
  REALMS: z.string().transform((text) => text.split(",")),
  ROLE: z.enum(["keeper", "reader"]),
  /** Who this incarnation is: sent as the token requests' User-Agent. */
  NAME: z.string(),
  LOOPS: z.coerce.number().int().min(1).default(4),
  TOKEN_TIMEOUT_MS: z.coerce.number().int().min(100).default(1500),
});
const env = Env.parse(process.env);
const logger = createLogger({ service: env.NAME, level: "silent" });
const client = await NatsClient.connect({ servers: [env.NATS_URL], name: env.NAME, logger });
const tokens = new KvTokenSource(
  await openBucket(client, Buckets.tokens, { replicas: 1 }),
  new TokenCipher(Buffer.from(env.TOKEN_KEY, "base64")),
  {
    tokenUrl: `${env.SANDBOX_URL}/oauth2/v1/tokens/bearer`,
    revokeUrl: `${env.SANDBOX_URL}/v2/oauth2/tokens/revoke`,
    clientId: "client",
    clientSecret: "secret",
    timeoutMs: env.TOKEN_TIMEOUT_MS,
    userAgent: env.NAME,
  },
  // One machine, one clock: a claim lasts twice the request timeout, not a margin more.
  { clockSkewMs: 0 },
);
const quickbooks = new QuickBooksClient({ baseUrl: env.SANDBOX_URL, tokens, logger, maxAttempts: 1 });
const YEAR_MS = 365 * 24 * 3600_000;

let stopping = false;
process.once("SIGTERM", () => {
  stopping = true;
});

const report = (line: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ name: env.NAME, ...line })}\n`);

async function loop(): Promise<void> {
  while (!stopping) {
    const realmId = env.REALMS[Math.floor(Math.random() * env.REALMS.length)] ?? "";
    try {
      if (env.ROLE === "keeper") {
        const { refreshed } = await tokens.refreshIfExpiring(realmId, YEAR_MS);
        report({ realmId, ok: refreshed ? "refreshed" : "fresh" });
      } else {
        await quickbooks.companyInfo(realmId);
        report({ realmId, ok: "read" });
      }
    } catch (err) {
      if (!(err instanceof QuickBooksError)) throw err;
      report({ realmId, error: err.code });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

report({ started: true });
await Promise.all(Array.from({ length: env.LOOPS }, loop));
await client.drain();
