import { LOG_LEVELS } from "@qbo-webhooks/observability";
import { z } from "zod";

const commaList = (text: string) =>
  text
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");

const integer = (min: number, max: number, fallback: number) =>
  z.coerce
    .number({ error: "must be a whole number" })
    .int("must be a whole number")
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`)
    .default(fallback);

const booleanFlag = z
  .enum(["true", "false"], { error: 'must be "true" or "false"' })
  .default("false")
  .transform((value) => value === "true");

const ConfigSchema = z.object({
  NATS_URL: z
    .string()
    .default("nats://127.0.0.1:4222")
    .transform(commaList)
    .pipe(
      z
        .array(z.string().regex(/^(nats|tls|ws|wss):\/\/\S+$/, "each URL must look like nats://host:4222"))
        .min(1, "must name at least one server, e.g. nats://127.0.0.1:4222"),
    ),
  HTTP_PORT: integer(0, 65_535, 8080),
  QBO_VERIFIER_TOKENS: z
    .string({ error: "is required: the webhook verifier token(s) from the Intuit developer portal, comma-separated" })
    .transform(commaList)
    .pipe(z.array(z.string()).min(1, "must hold at least one verifier token")),
  MAX_BODY_BYTES: integer(1024, 64 * 1024 * 1024, 4 * 1024 * 1024),
  // QuickBooks gives up after 3 s; the answer must leave before that with room for the network.
  PUBLISH_TIMEOUT_MS: integer(100, 2500, 2000),
  NATS_STREAM_REPLICAS: integer(1, 5, 1),
  SHUTDOWN_DEADLINE_MS: integer(1000, 60_000, 8000),
  LOG_LEVEL: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(", ")}` }).default("info"),
  OTEL_SDK_DISABLED: booleanFlag,
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url("must be a URL such as http://otel-collector:4318").optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.url("must be a URL such as http://otel-collector:4318/v1/traces").optional(),
});

export interface IngressConfig {
  readonly natsServers: readonly string[];
  readonly httpPort: number;
  readonly verifierTokens: readonly string[];
  readonly maxBodyBytes: number;
  readonly publishTimeoutMs: number;
  readonly streamReplicas: number;
  readonly shutdownDeadlineMs: number;
  readonly logLevel: (typeof LOG_LEVELS)[number];
  /** Export spans over OTLP (an endpoint is set and the SDK is not disabled). */
  readonly exportTraces: boolean;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * Reads the ingress configuration from environment variables.
 *
 * @throws {ConfigError} naming every bad variable and what it should be.
 */
export function loadConfig(env: NodeJS.ProcessEnv): IngressConfig {
  const parsed = ConfigSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  ${issue.path.join(".")} ${issue.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
  }
  const c = parsed.data;
  if (c.SHUTDOWN_DEADLINE_MS <= c.PUBLISH_TIMEOUT_MS) {
    throw new ConfigError(
      "invalid configuration:\n  SHUTDOWN_DEADLINE_MS must exceed PUBLISH_TIMEOUT_MS, or shutdown cuts off requests awaiting their PubAck",
    );
  }
  return {
    natsServers: c.NATS_URL,
    httpPort: c.HTTP_PORT,
    verifierTokens: c.QBO_VERIFIER_TOKENS,
    maxBodyBytes: c.MAX_BODY_BYTES,
    publishTimeoutMs: c.PUBLISH_TIMEOUT_MS,
    streamReplicas: c.NATS_STREAM_REPLICAS,
    shutdownDeadlineMs: c.SHUTDOWN_DEADLINE_MS,
    logLevel: c.LOG_LEVEL,
    exportTraces:
      !c.OTEL_SDK_DISABLED &&
      (c.OTEL_EXPORTER_OTLP_ENDPOINT !== undefined || c.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT !== undefined),
  };
}
