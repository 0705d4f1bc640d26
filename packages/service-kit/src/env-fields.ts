import { LOG_LEVELS } from "@qbo-webhooks/observability";
import { z } from "zod";

/** Comma-separated values, trimmed, blanks dropped. */
export const commaList = (text: string) =>
  text
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");

/** A whole number within bounds, with a default. */
export const integer = (min: number, max: number, fallback: number) =>
  z.coerce
    .number({ error: "must be a whole number" })
    .int("must be a whole number")
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`)
    .default(fallback);

/** "true" or "false" only: `z.coerce.boolean()` would read "false" as true. */
export const booleanFlag = (fallback: boolean) =>
  z
    .enum(["true", "false"], { error: 'must be "true" or "false"' })
    .default(fallback ? "true" : "false")
    .transform((value) => value === "true");

/** An address to listen on: an IP address or a host name; 0.0.0.0 (the default) is every IPv4 interface. */
const bindHost = z
  .string()
  .regex(/^[\w.:-]+$/, "must be an IP address or host name, e.g. 0.0.0.0 or 127.0.0.1")
  .default("0.0.0.0");

/**
 * The variables every service reads (../shared/DESIGN.md). `/healthz`, `/readyz` and `/metrics`
 * are served on the ops port, apart from any public port.
 */
export const commonEnv = (defaultOpsPort: number) => ({
  NATS_URL: z
    .string()
    .default("nats://127.0.0.1:4222")
    .transform(commaList)
    .pipe(
      z
        .array(z.string().regex(/^(nats|tls|ws|wss):\/\/\S+$/, "each URL must look like nats://host:4222"))
        .min(1, "must name at least one server, e.g. nats://127.0.0.1:4222"),
    ),
  OPS_PORT: integer(0, 65_535, defaultOpsPort),
  OPS_HOST: bindHost,
  NATS_STREAM_REPLICAS: integer(1, 5, 1),
  SHUTDOWN_DEADLINE_MS: integer(1000, 60_000, 8000),
  LOG_LEVEL: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(", ")}` }).default("info"),
  OTEL_SDK_DISABLED: booleanFlag(false),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url("must be a URL such as http://otel-collector:4318").optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.url("must be a URL such as http://otel-collector:4318/v1/traces").optional(),
});

/** The public port of a service that serves one (the ingress's webhook, the reconciler's OAuth callback). */
export const publicHttpEnv = (defaultPort: number) => ({
  HTTP_PORT: integer(0, 65_535, defaultPort),
  HTTP_HOST: bindHost,
});

/** Whether spans go out over OTLP: an endpoint is set and the SDK is not disabled. */
export function exportsTraces(env: {
  OTEL_SDK_DISABLED: boolean;
  OTEL_EXPORTER_OTLP_ENDPOINT?: string | undefined;
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?: string | undefined;
}): boolean {
  return (
    !env.OTEL_SDK_DISABLED &&
    (env.OTEL_EXPORTER_OTLP_ENDPOINT !== undefined || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT !== undefined)
  );
}
