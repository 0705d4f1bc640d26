import { setTimeout as sleep } from "node:timers/promises";
import { isRevisionConflict, type KV, kvKey } from "@qbo-webhooks/messaging";
import { LRUCache } from "lru-cache";
import { z } from "zod";
import {
  type IssuedTokens,
  type OAuthEndpoint,
  requestTokens,
  revokeToken,
  TOKEN_REQUEST_TIMEOUT_MS,
} from "./oauth.js";
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
  /** When QuickBooks issued these (ms since the epoch, real time): of two writers, the later issue wins. */
  issuedAt: z.number().optional(),
});
export type StoredTokens = z.infer<typeof StoredTokens>;

/** Refresh this long before expiry, so a call never starts with a token about to lapse. */
const EARLY_MS = 5 * 60_000;
/** How far apart the clocks of two machines sharing a claim may be, unless told otherwise. */
const CLOCK_SKEW_MS = 10_000;
/** Realms whose access token a process keeps in memory; past it the least recently used is read again. */
const KNOWN_REALMS = 10_000;

/**
 * Tokens from KV, refreshed by one process at a time per realm: refresh tokens rotate, and using
 * a replaced one loses the company (QBO.md §7, §9.5), so a refresh first claims the entry by
 * compare-and-set, and everyone else waits for the new tokens.
 *
 * A process keeps the access token it last read or got for each realm and uses it, without reading
 * KV, until it is due for refresh. A token QuickBooks refuses meanwhile (the company disconnected, or
 * reconnected with new tokens) comes back as a 401, and `refresh` then reads what KV holds.
 */
export class KvTokenSource implements TokenSource {
  readonly #now: () => number;
  /**
   * How long a refresh may hold the realm's tokens before another process may take over: twice the
   * token request's timeout, so a claim never lapses while its request can still come back, and
   * the clock skew between machines.
   */
  readonly #claimMs: number;
  readonly #known = new LRUCache<string, Pick<StoredTokens, "accessToken" | "accessExpiresAt">>({ max: KNOWN_REALMS });

  constructor(
    private readonly kv: KV,
    private readonly cipher: TokenCipher,
    private readonly oauth: OAuthEndpoint,
    options: { now?: () => number; clockSkewMs?: number } = {},
  ) {
    this.#now = options.now ?? Date.now;
    this.#claimMs = 2 * (oauth.timeoutMs ?? TOKEN_REQUEST_TIMEOUT_MS) + (options.clockSkewMs ?? CLOCK_SKEW_MS);
  }

  /** Stores tokens for a realm, e.g. after the authorization-code exchange. */
  async save(realmId: string, tokens: IssuedTokens): Promise<void> {
    const stored: StoredTokens = { ...tokens, issuedAt: Date.now() };
    await this.kv.put(kvKey(realmId), this.#seal(stored));
    this.#known.delete(realmId);
  }

  /**
   * Revokes the realm's tokens at Intuit and forgets them; a realm without tokens has nothing to revoke.
   * @throws {QuickBooksError} as `revokeToken`: the tokens are kept, to be revoked on a later try.
   */
  async revoke(realmId: string): Promise<void> {
    const entry = await this.kv.get(kvKey(realmId));
    if (entry?.operation !== "PUT") return;
    const tokens = StoredTokens.parse(JSON.parse(this.cipher.decrypt(entry.string())));
    await revokeToken(this.oauth, tokens.refreshToken);
    this.#known.delete(realmId);
    await this.kv.delete(kvKey(realmId));
  }

  async accessToken(realmId: string): Promise<string> {
    const known = this.#known.get(realmId);
    if (known && !this.#due(known)) return known.accessToken;
    const { tokens } = await this.#read(realmId);
    if (tokens.refusedAt !== undefined) throw refused(realmId);
    if (!this.#due(tokens)) return this.#keep(realmId, tokens).accessToken;
    return this.refresh(realmId, tokens.accessToken);
  }

  /**
   * @throws {QuickBooksError} QBO_UNAUTHORIZED when QuickBooks refuses the refresh (revoked or
   *   replaced refresh token): the realm must be connected again.
   */
  async refresh(realmId: string, rejected: string): Promise<string> {
    this.#known.delete(realmId);
    const { tokens } = await this.#renew(realmId, (tokens) => tokens.accessToken === rejected || this.#due(tokens));
    return this.#keep(realmId, tokens).accessToken;
  }

  /**
   * Refreshes the realm's tokens when the access token lapses within `withinMs`: what the
   * reconciler's leader does ahead of expiry, so other processes rarely need to. Answers the
   * tokens now stored and whether this call refreshed them.
   * @throws {QuickBooksError} as {@link refresh}.
   */
  async refreshIfExpiring(realmId: string, withinMs: number): Promise<{ tokens: StoredTokens; refreshed: boolean }> {
    const renewed = await this.#renew(realmId, (tokens) => tokens.accessExpiresAt - withinMs <= this.#now());
    this.#keep(realmId, renewed.tokens);
    return renewed;
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
      const claimed = { ...tokens, refreshingUntil: Date.now() + this.#claimMs };
      let claimRevision: number;
      try {
        claimRevision = await this.kv.update(kvKey(realmId), this.#seal(claimed), revision);
      } catch (err) {
        if (isRevisionConflict(err)) continue; // someone else claimed it first
        throw err;
      }
      const { refreshingUntil: _claim, ...unclaimed } = tokens;
      let fresh: StoredTokens;
      try {
        const issued = await requestTokens(
          this.oauth,
          { grant_type: "refresh_token", refresh_token: tokens.refreshToken },
          this.#now,
        );
        fresh = { ...issued, issuedAt: Date.now() };
      } catch (err) {
        // Remember a refusal (invalid_grant only), so nobody presents the dead token again, and let go
        // of the claim. Anything else, a wrong client secret included, leaves the tokens as they were.
        const refusal = err instanceof QuickBooksError && err.code === "QBO_UNAUTHORIZED";
        await this.#settle(realmId, refusal ? { ...unclaimed, refusedAt: this.#now() } : unclaimed, claimRevision);
        throw err;
      }
      return { tokens: await this.#settle(realmId, fresh, claimRevision), refreshed: true };
    }
  }

  /**
   * Writes what a refresh ended with, compare-and-set on its claim's revision. If the claim lapsed
   * and another process wrote meanwhile, the later-issued tokens stay: a rotated refresh token is
   * never overwritten by an older one. Answers the tokens stored.
   */
  async #settle(realmId: string, value: StoredTokens, claimRevision: number): Promise<StoredTokens> {
    let revision = claimRevision;
    for (;;) {
      try {
        await this.kv.update(kvKey(realmId), this.#seal(value), revision);
        return value;
      } catch (err) {
        if (!isRevisionConflict(err)) throw err;
      }
      const current = await this.#read(realmId);
      if ((current.tokens.issuedAt ?? 0) >= (value.issuedAt ?? 0)) return current.tokens;
      revision = current.revision;
    }
  }

  /** Whether an access token is close enough to expiry to be refreshed before use. */
  #due(tokens: Pick<StoredTokens, "accessExpiresAt">): boolean {
    return tokens.accessExpiresAt - EARLY_MS <= this.#now();
  }

  #keep(realmId: string, tokens: StoredTokens): StoredTokens {
    this.#known.set(realmId, { accessToken: tokens.accessToken, accessExpiresAt: tokens.accessExpiresAt });
    return tokens;
  }

  #seal(tokens: StoredTokens): string {
    return this.cipher.encrypt(JSON.stringify(tokens));
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
