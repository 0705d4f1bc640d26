import { hostname } from "node:os";
import {
  checkQuickBooksEnv,
  type QuickBooksSettings,
  quickbooksEnvFields,
  quickbooksSettings,
} from "@qbo-webhooks/quickbooks";
import {
  type CommonSettings,
  checkNatsAuthEnv,
  commonEnv,
  commonSettings,
  integer,
  loadEnv,
} from "@qbo-webhooks/service-kit";
import { z } from "zod";

export const ProcessorEnv = z.object({
  ...commonEnv(9092),
  PARTITIONS: integer(1, 4096, 64),
  ...quickbooksEnvFields,
  /** A partition lease lapses this long after its holder's last renewal. */
  LEASE_TTL_MS: integer(2000, 120_000, 10_000),
  /** A realm's batch waits this long for more of its events (none when the realm was quiet for five times as long). */
  COALESCE_MS: integer(0, 10_000, 200),
  /** Realm batches one replica runs at once; more realms wait for a slot (and coalesce meanwhile). */
  MAX_CONCURRENT_REALMS: integer(1, 1000, 16),
  MAX_ATTEMPTS: integer(1, 100, 5),
  /** How changed entities are read: one CDC call per batch (QuickBooks' advice) or `Id IN` queries per type. */
  FETCH_STRATEGY: z.enum(["cdc", "query"], { error: 'must be "cdc" or "query"' }).default("cdc"),
  /** First retry delay of a failed batch; doubles per attempt. */
  RETRY_BASE_MS: integer(10, 60_000, 1000),
  /** How long a throttled realm waits; QuickBooks asks for 60 s (QBO.md §6). */
  THROTTLE_WAIT_MS: integer(100, 600_000, 60_000),
  /** Where applied changes are POSTed (Standard Webhooks); none means the feed is read from NATS only. */
  DELIVERY_URL: z.url("must be a URL such as https://app.example.com/qbo-changes").optional(),
  DELIVERY_SECRET: z
    .string()
    .regex(/^whsec_[A-Za-z0-9+/=]+$/, "must be a Standard Webhooks secret: whsec_ followed by base64")
    .optional(),
  DELIVERY_TIMEOUT_MS: integer(100, 120_000, 10_000),
  /** How long a change the app keeps refusing is retried, from when it was queued, before it is dead-lettered. */
  DELIVERY_RETRY_FOR_MS: integer(1000, 30 * 24 * 3600_000, 24 * 3600_000),
  /** The longest wait between two tries of a refused change. */
  DELIVERY_RETRY_MAX_MS: integer(100, 3600_000, 300_000),
  PROCESSOR_ID: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, "letters, digits, - and _ only")
    .optional(),
});

export interface DeliveryConfig {
  readonly url: string;
  readonly secret: string;
  readonly timeoutMs: number;
  readonly retryForMs: number;
  readonly retryCapMs: number;
}

export interface ProcessorConfig extends QuickBooksSettings, CommonSettings {
  /** POST applied changes to the app; absent without DELIVERY_URL. */
  readonly delivery?: DeliveryConfig;
  readonly partitions: number;
  readonly leaseTtlMs: number;
  readonly coalesceMs: number;
  readonly maxConcurrentRealms: number;
  readonly maxAttempts: number;
  readonly fetchStrategy: "cdc" | "query";
  readonly retryBaseMs: number;
  readonly throttleWaitMs: number;
  readonly processorId: string;
}

/** @throws {ConfigError} naming every bad variable; secrets are never echoed. */
export function loadConfig(env: NodeJS.ProcessEnv): ProcessorConfig {
  const c = loadEnv(
    ProcessorEnv.refine((v) => v.DELIVERY_URL === undefined || v.DELIVERY_SECRET !== undefined, {
      path: ["DELIVERY_SECRET"],
      message: "is required with DELIVERY_URL: the secret the app verifies signatures with (whsec_...)",
    })
      .superRefine(checkQuickBooksEnv)
      .superRefine(checkNatsAuthEnv),
    env,
  );
  return {
    ...commonSettings(c),
    ...(c.DELIVERY_URL && c.DELIVERY_SECRET
      ? {
          delivery: {
            url: c.DELIVERY_URL,
            secret: c.DELIVERY_SECRET,
            timeoutMs: c.DELIVERY_TIMEOUT_MS,
            retryForMs: c.DELIVERY_RETRY_FOR_MS,
            retryCapMs: c.DELIVERY_RETRY_MAX_MS,
          },
        }
      : {}),
    partitions: c.PARTITIONS,
    ...quickbooksSettings(c),
    leaseTtlMs: c.LEASE_TTL_MS,
    coalesceMs: c.COALESCE_MS,
    maxConcurrentRealms: c.MAX_CONCURRENT_REALMS,
    maxAttempts: c.MAX_ATTEMPTS,
    fetchStrategy: c.FETCH_STRATEGY,
    retryBaseMs: c.RETRY_BASE_MS,
    throttleWaitMs: c.THROTTLE_WAIT_MS,
    processorId: c.PROCESSOR_ID ?? `${hostname().replace(/[^A-Za-z0-9_-]/g, "-")}-${process.pid}`,
  };
}
