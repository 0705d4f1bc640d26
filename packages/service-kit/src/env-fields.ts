import { existsSync } from "node:fs";
import type { NatsAuth } from "@qbo-webhooks/messaging";
import { LOG_LEVELS, type LogLevel } from "@qbo-webhooks/observability";
import { z } from "zod";
import type { ListenAddress } from "./listen.js";
import { loadEnv } from "./load-env.js";

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
  ...natsAuthEnv,
  OPS_PORT: integer(0, 65_535, defaultOpsPort),
  OPS_HOST: bindHost,
  NATS_STREAM_REPLICAS: integer(1, 5, 1),
  SHUTDOWN_DEADLINE_MS: integer(1000, 60_000, 8000),
  LOG_LEVEL: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(", ")}` }).default("info"),
  OTEL_SDK_DISABLED: booleanFlag(false),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url("must be a URL such as http://otel-collector:4318").optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.url("must be a URL such as http://otel-collector:4318/v1/traces").optional(),
});

/** A path to a file that must exist. */
const file = (what: string) =>
  z
    .string()
    .refine((path) => existsSync(path), `names no file: it must be the path of ${what}`)
    .optional();

/** How a service authenticates to NATS and encrypts the connection (README: "NATS credentials"). */
const natsAuthEnv = {
  NATS_CREDS: file("a .creds file (nsc generate creds)"),
  NATS_NKEY_SEED: file("a file holding an NKey user seed (SU...)"),
  NATS_USER: z.string().min(1).optional(),
  NATS_PASSWORD: z.string().optional(),
  NATS_TOKEN: z.string().min(1).optional(),
  NATS_CA: file("the CA certificate (PEM) that signed the server's certificate"),
  NATS_CERT: file("this client's certificate (PEM), for servers that verify clients"),
  NATS_KEY: file("this client's private key (PEM)"),
};

type NatsAuthEnv = { [K in keyof typeof natsAuthEnv]?: string | undefined };

/**
 * Object-level checks of the NATS credentials, for a service's `superRefine`: one way to
 * authenticate, a password only with a user, a client certificate only with its key.
 */
export function checkNatsAuthEnv(c: NatsAuthEnv, ctx: z.RefinementCtx): void {
  const ways = (["NATS_CREDS", "NATS_NKEY_SEED", "NATS_USER", "NATS_TOKEN"] as const).filter((k) => c[k] !== undefined);
  if (ways.length > 1) {
    ctx.addIssue({
      code: "custom",
      path: [ways[1] ?? ""],
      message: `cannot be set with ${ways[0]}: choose one way to authenticate`,
    });
  }
  if (c.NATS_PASSWORD !== undefined && c.NATS_USER === undefined) {
    ctx.addIssue({ code: "custom", path: ["NATS_PASSWORD"], message: "needs NATS_USER" });
  }
  if ((c.NATS_CERT === undefined) !== (c.NATS_KEY === undefined)) {
    ctx.addIssue({ code: "custom", path: ["NATS_CERT"], message: "and NATS_KEY go together: set both or neither" });
  }
}

/** The NATS credentials and TLS settings from validated variables. */
export function natsAuthOf(c: NatsAuthEnv): NatsAuth {
  const tls = {
    ...(c.NATS_CA ? { caFile: c.NATS_CA } : {}),
    ...(c.NATS_CERT ? { certFile: c.NATS_CERT } : {}),
    ...(c.NATS_KEY ? { keyFile: c.NATS_KEY } : {}),
  };
  return {
    ...(c.NATS_CREDS ? { credsFile: c.NATS_CREDS } : {}),
    ...(c.NATS_NKEY_SEED ? { nkeySeedFile: c.NATS_NKEY_SEED } : {}),
    ...(c.NATS_USER ? { user: c.NATS_USER, password: c.NATS_PASSWORD ?? "" } : {}),
    ...(c.NATS_TOKEN ? { token: c.NATS_TOKEN } : {}),
    ...(Object.keys(tls).length > 0 ? { tls } : {}),
  };
}

/**
 * NATS credentials and TLS from the environment alone, for tools such as the CLI.
 * @throws {ConfigError} naming every bad variable.
 */
export function loadNatsAuth(env: NodeJS.ProcessEnv): NatsAuth {
  return natsAuthOf(loadEnv(z.object(natsAuthEnv).superRefine(checkNatsAuthEnv), env));
}

/** The public port of a service that serves one (the ingress's webhook, the reconciler's OAuth callback). */
export const publicHttpEnv = (defaultPort: number) => ({
  HTTP_PORT: integer(0, 65_535, defaultPort),
  HTTP_HOST: bindHost,
});

/** What every service's configuration holds from `commonEnv`. */
export interface CommonSettings {
  readonly natsServers: readonly string[];
  /** Credentials and TLS for NATS (NATS_CREDS, NATS_USER, … NATS_CA); none: anonymous, plain. */
  readonly natsAuth?: NatsAuth;
  /** `/healthz`, `/readyz`, `/metrics`. */
  readonly ops: ListenAddress;
  readonly streamReplicas: number;
  readonly shutdownDeadlineMs: number;
  readonly logLevel: LogLevel;
  /** Export spans over OTLP (an endpoint is set and the SDK is not disabled). */
  readonly exportTraces: boolean;
}

/** The common settings from variables validated with `commonEnv` (and `checkNatsAuthEnv`). */
export function commonSettings(c: z.output<z.ZodObject<ReturnType<typeof commonEnv>>>): CommonSettings {
  return {
    natsServers: c.NATS_URL,
    natsAuth: natsAuthOf(c),
    ops: { port: c.OPS_PORT, host: c.OPS_HOST, variable: "OPS_PORT" },
    streamReplicas: c.NATS_STREAM_REPLICAS,
    shutdownDeadlineMs: c.SHUTDOWN_DEADLINE_MS,
    logLevel: c.LOG_LEVEL,
    exportTraces: exportsTraces(c),
  };
}

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
