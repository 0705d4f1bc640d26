import type { LogLevel } from "@qbo-webhooks/observability";
import { commaList, commonEnv, exportsTraces, integer, loadEnv } from "@qbo-webhooks/service-kit";
import { z } from "zod";

const IngressEnv = z.object({
  ...commonEnv(8080),
  QBO_VERIFIER_TOKENS: z
    .string({ error: "is required: the webhook verifier token(s) from the Intuit developer portal, comma-separated" })
    .transform(commaList)
    .pipe(z.array(z.string()).min(1, "must hold at least one verifier token")),
  MAX_BODY_BYTES: integer(1024, 64 * 1024 * 1024, 4 * 1024 * 1024),
  // QuickBooks gives up after 3 s; the answer must leave before that with room for the network.
  PUBLISH_TIMEOUT_MS: integer(100, 2500, 2000),
});

export interface IngressConfig {
  readonly natsServers: readonly string[];
  readonly httpPort: number;
  readonly verifierTokens: readonly string[];
  readonly maxBodyBytes: number;
  readonly publishTimeoutMs: number;
  readonly streamReplicas: number;
  readonly shutdownDeadlineMs: number;
  readonly logLevel: LogLevel;
  /** Export spans over OTLP (an endpoint is set and the SDK is not disabled). */
  readonly exportTraces: boolean;
}

/**
 * Reads the ingress configuration from environment variables.
 *
 * @throws {ConfigError} naming every bad variable and what it should be.
 */
export function loadConfig(env: NodeJS.ProcessEnv): IngressConfig {
  const c = loadEnv(
    IngressEnv.refine((v) => v.SHUTDOWN_DEADLINE_MS > v.PUBLISH_TIMEOUT_MS, {
      path: ["SHUTDOWN_DEADLINE_MS"],
      message: "must exceed PUBLISH_TIMEOUT_MS, or shutdown cuts off requests awaiting their PubAck",
    }),
    env,
  );
  return {
    natsServers: c.NATS_URL,
    httpPort: c.HTTP_PORT,
    verifierTokens: c.QBO_VERIFIER_TOKENS,
    maxBodyBytes: c.MAX_BODY_BYTES,
    publishTimeoutMs: c.PUBLISH_TIMEOUT_MS,
    streamReplicas: c.NATS_STREAM_REPLICAS,
    shutdownDeadlineMs: c.SHUTDOWN_DEADLINE_MS,
    logLevel: c.LOG_LEVEL,
    exportTraces: exportsTraces(c),
  };
}
