import type { KV } from "@qbo-webhooks/messaging";
import type { Logger } from "@qbo-webhooks/observability";
import type { Registry } from "prom-client";
import { KvTokenSource } from "./kv-token-source.js";
import type { OAuthEndpoint } from "./oauth.js";
import { QuickBooksClient } from "./quickbooks-client.js";
import type { QuickBooksSettings } from "./quickbooks-env.js";
import { DEFAULT_RATE_LIMITS, RealmRateLimiter } from "./realm-rate-limiter.js";
import { SharedRealmBudget } from "./shared-realm-budget.js";
import { TokenCipher } from "./token-cipher.js";

/**
 * The QuickBooks API as every service uses it: tokens from KV `qbo-tokens` (encrypted, one
 * refresher per realm) and calls within the per-realm budget all processes share (KV `qbo-rate-limits`).
 */
export function connectQuickBooks(
  settings: QuickBooksSettings,
  buckets: { readonly tokens: KV; readonly rateLimits: KV },
  options: { logger: Logger; registry: Registry; now?: () => number; throttleWaitMs?: number; queryPageSize?: number },
): { tokens: KvTokenSource; quickbooks: QuickBooksClient; oauth: OAuthEndpoint } {
  const oauth = {
    tokenUrl: settings.tokenUrl,
    revokeUrl: settings.revokeUrl,
    clientId: settings.clientId,
    clientSecret: settings.clientSecret,
  };
  const tokens = new KvTokenSource(
    buckets.tokens,
    new TokenCipher(settings.tokenKey),
    oauth,
    options.now ? { now: options.now } : {},
  );
  const quickbooks = new QuickBooksClient({
    baseUrl: settings.apiBaseUrl,
    tokens,
    logger: options.logger,
    registry: options.registry,
    limiter: new RealmRateLimiter(DEFAULT_RATE_LIMITS, new SharedRealmBudget(buckets.rateLimits, DEFAULT_RATE_LIMITS)),
    ...(options.throttleWaitMs === undefined ? {} : { throttleWaitMs: options.throttleWaitMs }),
    ...(options.queryPageSize === undefined ? {} : { queryPageSize: options.queryPageSize }),
  });
  return { tokens, quickbooks, oauth };
}
