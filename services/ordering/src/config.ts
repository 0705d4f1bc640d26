import type { NatsAuth } from "@qbo-webhooks/messaging";
import type { LogLevel } from "@qbo-webhooks/observability";
import {
  checkNatsAuthEnv,
  commonEnv,
  exportsTraces,
  integer,
  type ListenAddress,
  loadEnv,
  natsAuthOf,
} from "@qbo-webhooks/service-kit";
import { z } from "zod";

const OrderingEnv = z.object({
  ...commonEnv(9091),
  /** Processor partitions; changing it moves realms between partitions, so keep it fixed per deployment. */
  PARTITIONS: integer(1, 4096, 64),
  /** Attempts at a notification before it is dead-lettered instead of blocking the stream. */
  MAX_ATTEMPTS: integer(1, 100, 5),
});

export interface OrderingConfig {
  readonly natsServers: readonly string[];
  /** Credentials and TLS for NATS (NATS_CREDS, NATS_USER, … NATS_CA); none: anonymous, plain. */
  readonly natsAuth?: NatsAuth;
  /** `/healthz`, `/readyz`, `/metrics`. */
  readonly ops: ListenAddress;
  readonly partitions: number;
  readonly maxAttempts: number;
  readonly streamReplicas: number;
  readonly shutdownDeadlineMs: number;
  readonly logLevel: LogLevel;
  readonly exportTraces: boolean;
}

/** @throws {ConfigError} naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv): OrderingConfig {
  const c = loadEnv(OrderingEnv.superRefine(checkNatsAuthEnv), env);
  return {
    natsServers: c.NATS_URL,
    natsAuth: natsAuthOf(c),
    ops: { port: c.OPS_PORT, host: c.OPS_HOST },
    partitions: c.PARTITIONS,
    maxAttempts: c.MAX_ATTEMPTS,
    streamReplicas: c.NATS_STREAM_REPLICAS,
    shutdownDeadlineMs: c.SHUTDOWN_DEADLINE_MS,
    logLevel: c.LOG_LEVEL,
    exportTraces: exportsTraces(c),
  };
}
