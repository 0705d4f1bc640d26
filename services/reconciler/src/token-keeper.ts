import type { RealmRecord } from "@qbo-webhooks/contracts";
import type { RealmRegistry } from "@qbo-webhooks/entity-store";
import type { Logger } from "@qbo-webhooks/observability";
import { type KvTokenSource, QuickBooksError } from "@qbo-webhooks/quickbooks";
import type { ReconcilerMetrics } from "./reconciler-metrics.js";

export interface TokenKeeperDeps {
  readonly tokens: KvTokenSource;
  readonly registry: RealmRegistry;
  readonly metrics: ReconcilerMetrics;
  readonly logger: Logger;
  readonly now: () => number;
  /** Told whether QuickBooks refused our client credentials (`invalid_client`) on the last refresh. */
  readonly clientRefused: (problem: string | undefined) => void;
}

/**
 * Refreshes a realm's tokens ahead of expiry and keeps the expiry in its record; answers false when
 * QuickBooks refused them and the realm is now disconnected.
 */
export async function keepTokensAlive(deps: TokenKeeperDeps, realm: RealmRecord, aheadMs: number): Promise<boolean> {
  // The record keeps the expiry it last saw; tokens only ever get later, so no need to read them yet.
  const expiresAt = realm.accessTokenExpiresAt;
  if (expiresAt !== undefined && expiresAt - aheadMs > deps.now()) return true;
  try {
    const { tokens, refreshed } = await deps.tokens.refreshIfExpiring(realm.realmId, aheadMs);
    if (refreshed) {
      deps.metrics.tokenRefreshes.inc({ result: "refreshed" });
      deps.clientRefused(undefined);
    }
    if (realm.accessTokenExpiresAt !== tokens.accessExpiresAt) {
      await deps.registry.update(
        realm.realmId,
        (r) =>
          r && { ...r, accessTokenExpiresAt: tokens.accessExpiresAt, refreshTokenExpiresAt: tokens.refreshExpiresAt },
      );
    }
    return true;
  } catch (err) {
    if (await disconnectIfRefused(deps, realm.realmId, err)) return false;
    if (err instanceof QuickBooksError && err.code === "QBO_CLIENT_REFUSED") {
      // Our configuration, not the company: its tokens stay, and it stays connected.
      deps.metrics.tokenRefreshes.inc({ result: "client_refused" });
      deps.logger.error({ realmId: realm.realmId, err }, "QuickBooks refused our client credentials; tokens kept");
      deps.clientRefused(err.message);
      return true;
    }
    deps.metrics.tokenRefreshes.inc({ result: "failed" });
    deps.logger.warn({ realmId: realm.realmId, err }, "token refresh failed; will retry");
    return true;
  }
}

/**
 * When `err` says QuickBooks refused the realm's tokens (a refresh answered `invalid_grant`: the
 * company disconnected the app, or the refresh token lapsed), marks the realm disconnected by
 * QuickBooks and answers true. Whoever meets the refusal first, the refresh ahead of expiry or a CDC
 * call's refresh after a 401, records it: the record must not say "connected" until the next refresh.
 */
export async function disconnectIfRefused(
  deps: Pick<TokenKeeperDeps, "registry" | "metrics" | "logger">,
  realmId: string,
  err: unknown,
): Promise<boolean> {
  if (!(err instanceof QuickBooksError && err.code === "QBO_UNAUTHORIZED")) return false;
  deps.metrics.tokenRefreshes.inc({ result: "refused" });
  deps.logger.error({ realmId, err }, "QuickBooks refused the realm's tokens; marked disconnected");
  await deps.registry.update(
    realmId,
    (r) =>
      r && {
        ...r,
        status: "disconnected",
        disconnectedBy: "quickbooks",
        statusReason: `${err.message} (connect the company again: /connect)`,
      },
  );
  return true;
}

/**
 * After a QuickBooks call was refused (401) even with a refreshed token: asks the token source
 * whether the tokens themselves were refused, and if so disconnects the realm. A 401 the tokens
 * survive (QuickBooks' own hiccup) leaves the realm connected and the call to its retries.
 */
export async function disconnectIfTokensRefused(
  deps: Pick<TokenKeeperDeps, "tokens" | "registry" | "metrics" | "logger">,
  realmId: string,
): Promise<boolean> {
  try {
    await deps.tokens.refreshIfExpiring(realmId, 0);
    return false;
  } catch (err) {
    return disconnectIfRefused(deps, realmId, err);
  }
}
