import {
  type CommonSettings,
  checkNatsAuthEnv,
  commaList,
  commonEnv,
  commonSettings,
  integer,
  type ListenAddress,
  loadEnv,
  publicHttpEnv,
} from "@qbo-webhooks/service-kit";
import { z } from "zod";

export const IngressEnv = z.object({
  ...commonEnv(9090),
  ...publicHttpEnv(8080),
  QBO_VERIFIER_TOKENS: z
    .string({ error: "is required: the webhook verifier token(s) from the Intuit developer portal, comma-separated" })
    .transform(commaList)
    .pipe(z.array(z.string()).min(1, "must hold at least one verifier token")),
  MAX_BODY_BYTES: integer(1024, 64 * 1024 * 1024, 4 * 1024 * 1024),
  // QuickBooks gives up after 3 s; the answer must leave before that with room for the network.
  PUBLISH_TIMEOUT_MS: integer(100, 2500, 2000),
});

export interface IngressConfig extends CommonSettings {
  /** The public port: `POST /webhooks/quickbooks` and nothing else. */
  readonly http: ListenAddress;
  readonly verifierTokens: readonly string[];
  readonly maxBodyBytes: number;
  readonly publishTimeoutMs: number;
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
    }).superRefine(checkNatsAuthEnv),
    env,
  );
  return {
    ...commonSettings(c),
    http: { port: c.HTTP_PORT, host: c.HTTP_HOST, variable: "HTTP_PORT" },
    verifierTokens: c.QBO_VERIFIER_TOKENS,
    maxBodyBytes: c.MAX_BODY_BYTES,
    publishTimeoutMs: c.PUBLISH_TIMEOUT_MS,
  };
}
