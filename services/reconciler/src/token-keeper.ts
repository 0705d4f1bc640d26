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
    if (err instanceof QuickBooksError && err.code === "QBO_UNAUTHORIZED") {
      deps.metrics.tokenRefreshes.inc({ result: "refused" });
      deps.logger.error({ realmId: realm.realmId, err }, "QuickBooks refused the realm's tokens; marked disconnected");
      await deps.registry.update(
        realm.realmId,
        (r) =>
          r && {
            ...r,
            status: "disconnected",
            disconnectedBy: "quickbooks",
            statusReason: `${err.message} (connect the company again: /connect)`,
          },
      );
      return false;
    }
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
