import { setTimeout as sleep } from "node:timers/promises";
import { isRevisionConflict, type KV, kvKey } from "@qbo-webhooks/messaging";
import { z } from "zod";
import { type IssuedTokens, type OAuthEndpoint, requestTokens } from "./oauth.js";
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
  async save(realmId: string, tokens: IssuedTokens): Promise<void> {
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
    const { tokens } = await this.#renew(
      realmId,
      (tokens) => tokens.accessToken === rejected || tokens.accessExpiresAt - EARLY_MS <= this.now(),
    );
    return tokens.accessToken;
  }

  /**
   * Refreshes the realm's tokens when the access token lapses within `withinMs`: what the
   * reconciler's leader does ahead of expiry, so other processes rarely need to. Answers the
   * tokens now stored and whether this call refreshed them.
   * @throws {QuickBooksError} as {@link refresh}.
   */
  async refreshIfExpiring(realmId: string, withinMs: number): Promise<{ tokens: StoredTokens; refreshed: boolean }> {
    return this.#renew(realmId, (tokens) => tokens.accessExpiresAt - withinMs <= this.now());
  }

  async #renew(
    realmId: string,
    due: (tokens: StoredTokens) => boolean,
  ): Promise<{ tokens: StoredTokens; refreshed: boolean }> {
    for (;;) {
      const { tokens, revision } = await this.#read(realmId);
      if (tokens.refusedAt !== undefined) throw refused(realmId);
      if (!due(tokens)) return { tokens, refreshed: false };
      // The claim is a lease between processes: real time, whatever clock token expiry is read on.
      if ((tokens.refreshingUntil ?? 0) > Date.now()) {
        await sleep(200);
        continue;
      }
      const claimed = { ...tokens, refreshingUntil: Date.now() + REFRESH_LEASE_MS };
      try {
        await this.kv.update(kvKey(realmId), this.cipher.encrypt(JSON.stringify(claimed)), revision);
      } catch (err) {
        if (isRevisionConflict(err)) continue; // someone else claimed it first
        throw err;
      }
      let fresh: IssuedTokens;
      try {
        fresh = await requestTokens(
          this.oauth,
          { grant_type: "refresh_token", refresh_token: tokens.refreshToken },
          this.now,
        );
      } catch (err) {
        // Remember a refusal, so nobody presents the dead token again, and let go of the claim.
        const { refreshingUntil: _claim, ...unclaimed } = tokens;
        const refusal = err instanceof QuickBooksError && err.code === "QBO_UNAUTHORIZED";
        const value = refusal ? { ...unclaimed, refusedAt: this.now() } : unclaimed;
        await this.kv.put(kvKey(realmId), this.cipher.encrypt(JSON.stringify(value)));
        throw err;
      }
      await this.save(realmId, fresh);
      return { tokens: fresh, refreshed: true };
    }
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
