import { setTimeout as sleep } from "node:timers/promises";
import { isRevisionConflict, type KV, kvKey } from "@qbo-webhooks/messaging";
import { z } from "zod";
import type { TokenSource } from "./quickbooks-client.js";
import { QuickBooksError } from "./quickbooks-error.js";
import type { TokenCipher } from "./token-cipher.js";

/** A realm's tokens as kept (encrypted) in KV `qbo-tokens`. */
export const StoredTokens = z.object({
  accessToken: z.string(),
  refreshToken: z.string(),
  /** ms since the epoch. */
  accessExpiresAt: z.number(),
  refreshExpiresAt: z.number(),
  /** While set and in the future, one process is refreshing; the others wait for its result. */
  refreshingUntil: z.number().optional(),
  /** QuickBooks refused the refresh token (revoked or replaced): no call works until the realm reconnects. */
  refusedAt: z.number().optional(),
});
export type StoredTokens = z.infer<typeof StoredTokens>;

export interface OAuthEndpoint {
  /** `https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer`, or the sandbox's. */
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly clientSecret: string;
}

const TokenResponse = z.object({
  access_token: z.string(),
  refresh_token: z.string(),
  expires_in: z.number(),
  x_refresh_token_expires_in: z.number(),
});

/** Refresh this long before expiry, so a call never starts with a token about to lapse. */
const EARLY_MS = 5 * 60_000;
/** How long a refresh may hold the realm's tokens before another process may take over. */
const REFRESH_LEASE_MS = 30_000;

/**
 * Tokens from KV, refreshed by one process at a time per realm: refresh tokens rotate, and using
 * a replaced one loses the company (QBO.md §7, §9.5), so a refresh first claims the entry by
 * compare-and-set, and everyone else waits for the new tokens.
 */
export class KvTokenSource implements TokenSource {
  constructor(
    private readonly kv: KV,
    private readonly cipher: TokenCipher,
    private readonly oauth: OAuthEndpoint,
    private readonly now: () => number = Date.now,
  ) {}

  /** Stores tokens for a realm, e.g. after the authorization-code exchange. */
  async save(realmId: string, tokens: Omit<StoredTokens, "refreshingUntil" | "refusedAt">): Promise<void> {
    await this.kv.put(kvKey(realmId), this.cipher.encrypt(JSON.stringify(tokens)));
  }

  async accessToken(realmId: string): Promise<string> {
    const { tokens } = await this.#read(realmId);
    if (tokens.refusedAt !== undefined) throw refused(realmId);
    if (tokens.accessExpiresAt - EARLY_MS > this.now()) return tokens.accessToken;
    return this.refresh(realmId, tokens.accessToken);
  }

  /**
   * @throws {QuickBooksError} QBO_UNAUTHORIZED when QuickBooks refuses the refresh (revoked or
   *   replaced refresh token): the realm must be connected again.
   */
  async refresh(realmId: string, rejected: string): Promise<string> {
    for (;;) {
      const { tokens, revision } = await this.#read(realmId);
      if (tokens.refusedAt !== undefined) throw refused(realmId);
      if (tokens.accessToken !== rejected && tokens.accessExpiresAt - EARLY_MS > this.now()) return tokens.accessToken;
      if ((tokens.refreshingUntil ?? 0) > this.now()) {
        await sleep(200);
        continue;
      }
      const claimed = { ...tokens, refreshingUntil: this.now() + REFRESH_LEASE_MS };
      try {
        await this.kv.update(kvKey(realmId), this.cipher.encrypt(JSON.stringify(claimed)), revision);
      } catch (err) {
        if (isRevisionConflict(err)) continue; // someone else claimed it first
        throw err;
      }
      let fresh: Omit<StoredTokens, "refreshingUntil" | "refusedAt">;
      try {
        fresh = await this.#exchange(tokens.refreshToken);
      } catch (err) {
        // Remember the refusal, so nobody presents the dead token again, and let go of the claim.
        const { refreshingUntil: _claim, ...unclaimed } = tokens;
        const value = err instanceof QuickBooksError ? { ...unclaimed, refusedAt: this.now() } : unclaimed;
        await this.kv.put(kvKey(realmId), this.cipher.encrypt(JSON.stringify(value)));
        throw err;
      }
      await this.save(realmId, fresh);
      return fresh.accessToken;
    }
  }

  async #exchange(refreshToken: string): Promise<Omit<StoredTokens, "refreshingUntil" | "refusedAt">> {
    const response = await fetch(this.oauth.tokenUrl, {
      method: "POST",
      headers: {
        authorization: `Basic ${Buffer.from(`${this.oauth.clientId}:${this.oauth.clientSecret}`).toString("base64")}`,
        accept: "application/json",
      },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken }),
    });
    const body: unknown = await response.json().catch(() => undefined);
    if (!response.ok) {
      const intuitTid = response.headers.get("intuit_tid") ?? undefined;
      throw new QuickBooksError(
        "QBO_UNAUTHORIZED",
        `token refresh refused (${response.status}): ${JSON.stringify(body)}`,
        {
          status: response.status,
          ...(intuitTid ? { intuitTid } : {}),
        },
      );
    }
    const parsed = TokenResponse.parse(body);
    const now = this.now();
    return {
      accessToken: parsed.access_token,
      refreshToken: parsed.refresh_token,
      accessExpiresAt: now + parsed.expires_in * 1000,
      refreshExpiresAt: now + parsed.x_refresh_token_expires_in * 1000,
    };
  }

  async #read(realmId: string): Promise<{ tokens: StoredTokens; revision: number }> {
    const entry = await this.kv.get(kvKey(realmId));
    if (entry?.operation !== "PUT") {
      throw new QuickBooksError("QBO_UNAUTHORIZED", `no tokens for realm ${realmId}: connect the company first`);
    }
    return { tokens: StoredTokens.parse(JSON.parse(this.cipher.decrypt(entry.string()))), revision: entry.revision };
  }
}

function refused(realmId: string): QuickBooksError {
  return new QuickBooksError(
    "QBO_UNAUTHORIZED",
    `QuickBooks refused realm ${realmId}'s refresh token: connect the company again`,
  );
}
