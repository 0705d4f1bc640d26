import { jsonOrUndefined } from "@qbo-webhooks/contracts";
import { z } from "zod";
import { answerOf, parseAnswer } from "./qbo-answers.js";
import { fetchFailed, QuickBooksError } from "./quickbooks-error.js";

/** Intuit's consent page (QBO.md §7); the sandbox serves the same path. */
export const INTUIT_AUTHORIZE_URL = "https://appcenter.intuit.com/connect/oauth2";
export const INTUIT_TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer";
export const INTUIT_REVOKE_URL = "https://developer.api.intuit.com/v2/oauth2/tokens/revoke";
export const ACCOUNTING_SCOPE = "com.intuit.quickbooks.accounting";

export interface OAuthEndpoint {
  /** `https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer`, or the sandbox's. */
  readonly tokenUrl: string;
  /** `https://developer.api.intuit.com/v2/oauth2/tokens/revoke`, or the sandbox's. */
  readonly revokeUrl: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** How long one token request may take; {@link TOKEN_REQUEST_TIMEOUT_MS} by default. */
  readonly timeoutMs?: number;
  /** Sent as `User-Agent`, so Intuit (and our sandbox) can tell who asked; `qbo-webhooks` by default. */
  readonly userAgent?: string;
}

/** Tokens as issued, with expiry times in ms since the epoch. */
export interface IssuedTokens {
  readonly accessToken: string;
  readonly refreshToken: string;
  readonly accessExpiresAt: number;
  readonly refreshExpiresAt: number;
}

/** How long one token request may take, unless the endpoint says otherwise. */
export const TOKEN_REQUEST_TIMEOUT_MS = 30_000;

/** An OAuth error answer (RFC 6749 §5.2). */
const TokenError = z.object({ error: z.string(), error_description: z.string().optional() });

const TokenResponse = z.looseObject({
  access_token: z.string(),
  refresh_token: z.string(),
  expires_in: z.number(),
  x_refresh_token_expires_in: z.number(),
});

/** The fields of the token endpoint's answer that we keep. */
type TokenAnswer = Pick<
  z.infer<typeof TokenResponse>,
  "access_token" | "refresh_token" | "expires_in" | "x_refresh_token_expires_in"
>;

/** Where to send a user to connect a company: the consent page, coming back to `redirectUri` with a code. */
export function authorizeUrl(
  authorizeBase: string,
  options: { clientId: string; redirectUri: string; state: string; scopes?: readonly string[] },
): string {
  const url = new URL(authorizeBase);
  url.search = new URLSearchParams({
    client_id: options.clientId,
    response_type: "code",
    scope: (options.scopes ?? [ACCOUNTING_SCOPE]).join(" "),
    redirect_uri: options.redirectUri,
    state: options.state,
  }).toString();
  return url.toString();
}

/**
 * One call to the token endpoint: an authorization-code exchange or a refresh (QBO.md §7).
 * @throws {QuickBooksError} QBO_UNAUTHORIZED when the grant is refused (`invalid_grant`: the code
 *   or refresh token is used, replaced, expired or revoked); QBO_CLIENT_REFUSED when our client
 *   id or secret is (`invalid_client`, or a 401); QBO_BAD_RESPONSE for a 200 answer without
 *   tokens (HTML, cut short, wrongly typed); QBO_TIMEOUT, QBO_NETWORK or QBO_SERVER for failures
 *   that may pass.
 */
export async function requestTokens(
  endpoint: OAuthEndpoint,
  grant:
    | { grant_type: "authorization_code"; code: string; redirect_uri: string }
    | { grant_type: "refresh_token"; refresh_token: string },
  now: () => number,
): Promise<IssuedTokens> {
  const timeout = AbortSignal.timeout(endpoint.timeoutMs ?? TOKEN_REQUEST_TIMEOUT_MS);
  let response: Response;
  let text: string;
  try {
    response = await fetch(endpoint.tokenUrl, {
      method: "POST",
      headers: {
        authorization: basicAuthorization(endpoint),
        accept: "application/json",
        "user-agent": endpoint.userAgent ?? "qbo-webhooks",
      },
      body: new URLSearchParams(grant),
      signal: timeout,
    });
    text = await response.text();
  } catch (err) {
    throw fetchFailed("token endpoint", timeout.aborted, err);
  }
  const intuitTid = response.headers.get("intuit_tid") ?? undefined;
  const details = { status: response.status, ...(intuitTid ? { intuitTid } : {}) };
  if (!response.ok) {
    // An error page that is not JSON: its status says enough.
    const error = TokenError.safeParse(jsonOrUndefined(text)).data?.error;
    if (error === "invalid_grant") {
      throw new QuickBooksError(
        "QBO_UNAUTHORIZED",
        `token request refused (${response.status} invalid_grant)`,
        details,
      );
    }
    if (error === "invalid_client" || response.status === 401) {
      throw new QuickBooksError(
        "QBO_CLIENT_REFUSED",
        `the token endpoint refused our client credentials (${response.status} ${error ?? ""}): check QBO_CLIENT_ID and QBO_CLIENT_SECRET`,
        details,
      );
    }
    throw new QuickBooksError("QBO_SERVER", `token request failed (${response.status} ${error ?? ""})`, details);
  }
  const contentType = response.headers.get("content-type") ?? "";
  return issuedTokensOf(parseAnswer(TokenResponse, answerOf(text, contentType, "token endpoint", details)), now());
}

/**
 * Revokes a refresh token (and with it the company's connection to the app) at Intuit (QBO.md §7).
 * A token Intuit no longer knows (400) counts as revoked.
 * @throws {QuickBooksError} QBO_CLIENT_REFUSED for our client credentials refused (401);
 *   QBO_SERVER, QBO_TIMEOUT or QBO_NETWORK for failures that may pass.
 */
export async function revokeToken(endpoint: OAuthEndpoint, token: string): Promise<void> {
  const timeout = AbortSignal.timeout(endpoint.timeoutMs ?? TOKEN_REQUEST_TIMEOUT_MS);
  let response: Response;
  try {
    response = await fetch(endpoint.revokeUrl, {
      method: "POST",
      headers: {
        authorization: basicAuthorization(endpoint),
        accept: "application/json",
        "content-type": "application/json",
        "user-agent": endpoint.userAgent ?? "qbo-webhooks",
      },
      body: JSON.stringify({ token }),
      signal: timeout,
    });
    await response.arrayBuffer();
  } catch (err) {
    throw fetchFailed("revoke endpoint", timeout.aborted, err);
  }
  if (response.ok || response.status === 400) return;
  const details = { status: response.status };
  if (response.status === 401) {
    throw new QuickBooksError(
      "QBO_CLIENT_REFUSED",
      "the revoke endpoint refused our client credentials (401): check QBO_CLIENT_ID and QBO_CLIENT_SECRET",
      details,
    );
  }
  throw new QuickBooksError("QBO_SERVER", `token revocation failed (${response.status})`, details);
}

function basicAuthorization(endpoint: OAuthEndpoint): string {
  return `Basic ${Buffer.from(`${endpoint.clientId}:${endpoint.clientSecret}`).toString("base64")}`;
}

/** The token endpoint's answer as we keep it: lifetimes in seconds become instants from `at` (ms). */
export function issuedTokensOf(answer: TokenAnswer, at: number): IssuedTokens {
  return {
    accessToken: answer.access_token,
    refreshToken: answer.refresh_token,
    accessExpiresAt: at + answer.expires_in * 1000,
    refreshExpiresAt: at + answer.x_refresh_token_expires_in * 1000,
  };
}
