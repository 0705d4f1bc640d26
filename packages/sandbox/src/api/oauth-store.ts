import { randomBytes } from "node:crypto";
import type { SandboxClock } from "../clock.js";
import type { OAuthState } from "../sandbox-state.js";

/** What QuickBooks' token endpoint returns (QBO.md §7). */
export interface TokenSet {
  readonly token_type: "bearer";
  readonly access_token: string;
  readonly refresh_token: string;
  readonly expires_in: number;
  readonly x_refresh_token_expires_in: number;
  readonly x_refresh_token_hard_expires_in?: number;
}

interface Grant {
  readonly appId: string;
  readonly realmId: string;
  readonly hardExpiresAt: number;
  revoked: boolean;
}

interface RefreshToken {
  readonly grant: Grant;
  readonly expiresAt: number;
  /** Set once a refresh returned a newer token: this one is then refused (QBO.md §7). */
  replaced: boolean;
}

interface AccessToken {
  readonly grant: Grant;
  readonly expiresAt: number;
}

export type AuthResult = { ok: true; appId: string } | { ok: false; detail: string };

export class OAuthError extends Error {
  override name = "OAuthError";
  constructor(
    readonly error: "invalid_grant" | "invalid_client" | "invalid_request",
    readonly description: string,
  ) {
    super(description);
  }
}

const ACCESS_TTL_S = 3600;
const REFRESH_TTL_S = 8_726_400;
const HARD_TTL_S = 5 * 365 * 24 * 3600;

/** Authorization codes, access and refresh tokens, on the sandbox clock. */
export class OAuthStore {
  readonly #codes = new Map<string, { appId: string; realmId: string; redirectUri: string; expiresAt: number }>();
  readonly #refresh = new Map<string, RefreshToken>();
  readonly #access = new Map<string, AccessToken>();

  /** `changed` hears every new, rotated or revoked token: what a saved sandbox must write down. */
  constructor(
    private readonly clock: SandboxClock,
    private readonly changed: () => void = () => {},
  ) {}

  /** The grants and their tokens (authorization codes live ten minutes and are not kept). */
  toState(): OAuthState {
    const grants = new Map<Grant, OAuthState["grants"][number]>();
    const of = (grant: Grant) => {
      let saved = grants.get(grant);
      if (!saved) {
        saved = { ...grant, refreshTokens: [], accessTokens: [] };
        grants.set(grant, saved);
      }
      return saved;
    };
    for (const [token, { grant, expiresAt, replaced }] of this.#refresh)
      of(grant).refreshTokens.push({ token, expiresAt, replaced });
    for (const [token, { grant, expiresAt }] of this.#access) of(grant).accessTokens.push({ token, expiresAt });
    return { grants: [...grants.values()] };
  }

  /** Takes back what {@link toState} saved, in place of what this store holds. */
  restore(state: OAuthState): void {
    this.#refresh.clear();
    this.#access.clear();
    for (const { refreshTokens, accessTokens, ...saved } of state.grants) {
      const grant: Grant = { ...saved };
      for (const { token, expiresAt, replaced } of refreshTokens)
        this.#refresh.set(token, { grant, expiresAt, replaced });
      for (const { token, expiresAt } of accessTokens) this.#access.set(token, { grant, expiresAt });
    }
  }

  issueCode(appId: string, realmId: string, redirectUri: string): string {
    const code = `AB11${token(24)}`;
    this.#codes.set(code, { appId, realmId, redirectUri, expiresAt: this.clock.now() + 10 * 60_000 });
    return code;
  }

  /** @throws {OAuthError} invalid_grant for an unknown, used or expired code, or a different redirect URI. */
  exchangeCode(appId: string, code: string, redirectUri: string, withHardExpiry: boolean) {
    const issued = this.#codes.get(code);
    this.#codes.delete(code);
    if (
      !issued ||
      issued.appId !== appId ||
      issued.expiresAt < this.clock.now() ||
      issued.redirectUri !== redirectUri
    ) {
      throw new OAuthError("invalid_grant", "Invalid authorization code");
    }
    const grant: Grant = {
      appId,
      realmId: issued.realmId,
      hardExpiresAt: this.clock.now() + HARD_TTL_S * 1000,
      revoked: false,
    };
    return { realmId: issued.realmId, tokens: this.#issue(grant, withHardExpiry) };
  }

  /** Tokens for a company connected outside the browser flow (the control API). */
  connect(appId: string, realmId: string): TokenSet {
    return this.#issue({ appId, realmId, hardExpiresAt: this.clock.now() + HARD_TTL_S * 1000, revoked: false }, false);
  }

  /**
   * Rotates: the answer carries a new refresh token and the one presented stops working.
   *
   * @throws {OAuthError} invalid_grant ("Token invalid") for a replaced, expired, revoked or unknown token.
   */
  refresh(appId: string, refreshToken: string, withHardExpiry: boolean): { realmId: string; tokens: TokenSet } {
    const current = this.#refresh.get(refreshToken);
    const now = this.clock.now();
    if (
      !current ||
      current.grant.appId !== appId ||
      current.replaced ||
      current.grant.revoked ||
      current.expiresAt < now ||
      current.grant.hardExpiresAt < now
    ) {
      throw new OAuthError("invalid_grant", "Token invalid");
    }
    current.replaced = true;
    return { realmId: current.grant.realmId, tokens: this.#issue(current.grant, withHardExpiry) };
  }

  /** Revokes the grant a token belongs to; answers the app and realm so the caller can disconnect them. */
  revoke(appId: string, tokenText: string): { realmId: string } | undefined {
    const grant = (this.#refresh.get(tokenText) ?? this.#access.get(tokenText))?.grant;
    if (!grant || grant.appId !== appId) return undefined;
    grant.revoked = true;
    this.changed();
    return { realmId: grant.realmId };
  }

  /** Revokes every grant of an app on a company (disconnecting it). */
  revokeCompany(appId: string, realmId: string): void {
    for (const { grant } of [...this.#refresh.values(), ...this.#access.values()]) {
      if (grant.appId === appId && grant.realmId === realmId) grant.revoked = true;
    }
    this.changed();
  }

  /** The refresh token of the app's grant on the company that still works, if any. */
  liveRefreshToken(appId: string, realmId: string): string | undefined {
    const now = this.clock.now();
    for (const [text, refresh] of this.#refresh) {
      const { grant } = refresh;
      if (grant.appId !== appId || grant.realmId !== realmId || grant.revoked) continue;
      if (!refresh.replaced && refresh.expiresAt >= now) return text;
    }
    return undefined;
  }

  authenticate(accessToken: string | undefined, realmId: string): AuthResult {
    const access = accessToken ? this.#access.get(accessToken) : undefined;
    if (!access) return { ok: false, detail: "Token invalid: unknown access token" };
    if (access.grant.revoked) return { ok: false, detail: "Token revoked" };
    if (access.expiresAt < this.clock.now()) return { ok: false, detail: "Token expired: access token has expired" };
    if (access.grant.realmId !== realmId) return { ok: false, detail: "Token invalid for this realm" };
    return { ok: true, appId: access.grant.appId };
  }

  #issue(grant: Grant, withHardExpiry: boolean): TokenSet {
    const now = this.clock.now();
    const access_token = `eyJ${token(48)}`;
    const refresh_token = `RT1-${token(32)}`;
    this.#access.set(access_token, { grant, expiresAt: now + ACCESS_TTL_S * 1000 });
    this.#refresh.set(refresh_token, { grant, expiresAt: now + REFRESH_TTL_S * 1000, replaced: false });
    this.changed();
    return {
      token_type: "bearer",
      access_token,
      refresh_token,
      expires_in: ACCESS_TTL_S,
      x_refresh_token_expires_in: REFRESH_TTL_S,
      // Only when asked with `x-include-refresh-token-hard-expires-in: true` (QBO.md §7).
      ...(withHardExpiry ? { x_refresh_token_hard_expires_in: Math.floor((grant.hardExpiresAt - now) / 1000) } : {}),
    };
  }
}

function token(bytes: number): string {
  return randomBytes(bytes).toString("base64url");
}
