import { z } from "zod";
import { INTUIT_AUTHORIZE_URL, INTUIT_REVOKE_URL, INTUIT_TOKEN_URL } from "./oauth.js";

const API_BASE = {
  production: "https://quickbooks.api.intuit.com",
  sandbox: "https://sandbox-quickbooks.api.intuit.com",
};

/** The environment variables of every service that calls QuickBooks (../shared/DESIGN.md), with clear errors. */
export const quickbooksEnvFields = {
  QBO_ENVIRONMENT: z
    .enum(["production", "sandbox"], { error: 'must be "production" or "sandbox"' })
    .default("production"),
  QBO_API_BASE_URL: z.url("must be a URL such as http://127.0.0.1:8090").optional(),
  QBO_TOKEN_URL: z.url("must be a URL").optional(),
  QBO_AUTHORIZE_URL: z.url("must be a URL").optional(),
  QBO_REVOKE_URL: z.url("must be a URL").optional(),
  QBO_CLIENT_ID: z.string({ error: "is required: the app's OAuth client id from the Intuit developer portal" }).min(1),
  QBO_CLIENT_SECRET: z.string({ error: "is required: the app's OAuth client secret" }).min(1),
  /** Lets `production` talk to endpoints other than Intuit's (a proxy, say); off, so a sandbox URL cannot slip in. */
  QBO_ALLOW_CUSTOM_ENDPOINTS: z
    .enum(["true", "false"], { error: 'must be "true" or "false"' })
    .default("false")
    .transform((value) => value === "true"),
  TOKEN_ENCRYPTION_KEY: z
    .string({ error: "is required: 32 random bytes, base64 (openssl rand -base64 32)" })
    .transform((text) => Buffer.from(text, "base64"))
    .refine((key) => key.length === 32, "must be 32 bytes, base64 (openssl rand -base64 32)"),
};

type Parsed = z.output<z.ZodObject<typeof quickbooksEnvFields>>;

/** Intuit's own hosts; in production every QuickBooks endpoint must be one of them unless allowed otherwise. */
const INTUIT_HOST = /(^|\.)intuit\.com$/;

/**
 * Object-level checks of the QuickBooks variables, for a service's `superRefine`: in production,
 * endpoints other than Intuit's (such as our sandbox's) are refused unless QBO_ALLOW_CUSTOM_ENDPOINTS=true.
 */
export function checkQuickBooksEnv(c: Parsed, ctx: z.RefinementCtx): void {
  if (c.QBO_ENVIRONMENT !== "production" || c.QBO_ALLOW_CUSTOM_ENDPOINTS) return;
  for (const name of ["QBO_API_BASE_URL", "QBO_TOKEN_URL", "QBO_AUTHORIZE_URL", "QBO_REVOKE_URL"] as const) {
    const url = c[name];
    if (url !== undefined && !INTUIT_HOST.test(new URL(url).hostname)) {
      ctx.addIssue({
        code: "custom",
        path: [name],
        message: `is not an Intuit endpoint, and QBO_ENVIRONMENT is production: unset it, use QBO_ENVIRONMENT=sandbox for the sandbox, or set QBO_ALLOW_CUSTOM_ENDPOINTS=true`,
      });
    }
  }
}

export interface QuickBooksSettings {
  readonly environment: "production" | "sandbox";
  readonly apiBaseUrl: string;
  readonly tokenUrl: string;
  readonly authorizeUrl: string;
  /** Where tokens are revoked when a company is removed. */
  readonly revokeUrl: string;
  /** The OAuth URLs taken from `QBO_API_BASE_URL` because they were not set (our sandbox serves OAuth next to its API). */
  readonly impliedByApiBaseUrl: readonly ("QBO_TOKEN_URL" | "QBO_AUTHORIZE_URL" | "QBO_REVOKE_URL")[];
  readonly clientId: string;
  readonly clientSecret: string;
  readonly tokenKey: Uint8Array;
}

/** Where QuickBooks lives for the chosen environment; our sandbox serves OAuth next to its API. */
export function quickbooksSettings(c: Parsed): QuickBooksSettings {
  const sandbox = c.QBO_API_BASE_URL;
  return {
    environment: c.QBO_ENVIRONMENT,
    apiBaseUrl: sandbox ?? API_BASE[c.QBO_ENVIRONMENT],
    tokenUrl: c.QBO_TOKEN_URL ?? (sandbox ? `${sandbox}/oauth2/v1/tokens/bearer` : INTUIT_TOKEN_URL),
    authorizeUrl: c.QBO_AUTHORIZE_URL ?? (sandbox ? `${sandbox}/connect/oauth2` : INTUIT_AUTHORIZE_URL),
    revokeUrl: c.QBO_REVOKE_URL ?? (sandbox ? `${sandbox}/v2/oauth2/tokens/revoke` : INTUIT_REVOKE_URL),
    impliedByApiBaseUrl: sandbox
      ? (["QBO_TOKEN_URL", "QBO_AUTHORIZE_URL", "QBO_REVOKE_URL"] as const).filter((name) => c[name] === undefined)
      : [],
    clientId: c.QBO_CLIENT_ID,
    clientSecret: c.QBO_CLIENT_SECRET,
    tokenKey: c.TOKEN_ENCRYPTION_KEY,
  };
}

/**
 * The QuickBooks endpoints a service talks to, for its start-up log line: a user who set only
 * `QBO_API_BASE_URL` sees which OAuth URLs it implied.
 */
export function quickbooksEndpoints(settings: QuickBooksSettings): Record<string, string> {
  return {
    apiBaseUrl: settings.apiBaseUrl,
    tokenUrl: settings.tokenUrl,
    authorizeUrl: settings.authorizeUrl,
    revokeUrl: settings.revokeUrl,
    ...(settings.impliedByApiBaseUrl.length > 0
      ? { implied: `${settings.impliedByApiBaseUrl.join(" and ")} follow QBO_API_BASE_URL (set them to override)` }
      : {}),
  };
}
