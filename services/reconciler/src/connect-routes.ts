import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { ENTITY_NAMES, type EntityName, entityNameFromAnyCase } from "@qbo-webhooks/contracts";
import type { RealmRegistry } from "@qbo-webhooks/entity-store";
import type { Logger } from "@qbo-webhooks/observability";
import {
  authorizeUrl,
  type KvTokenSource,
  type OAuthEndpoint,
  QuickBooksError,
  requestTokens,
} from "@qbo-webhooks/quickbooks";
import { type Request, type Response, Router } from "express";

export interface ConnectSettings {
  readonly oauth: OAuthEndpoint;
  readonly authorizeUrl: string;
  readonly redirectUri: string;
  readonly environment: "production" | "sandbox";
  readonly entities: readonly EntityName[];
  /** Signs the OAuth `state`, so a callback is answered only for a flow we started. */
  readonly stateKey: Uint8Array;
  readonly tokens: KvTokenSource;
  readonly registry: RealmRegistry;
  readonly logger: Logger;
  readonly now: () => number;
}

/** A consent must come back within this long. */
const STATE_TTL_MS = 15 * 60_000;

/**
 * The OAuth 2.0 connect flow (QBO.md §7): `GET /connect` sends the user to Intuit's consent page;
 * `GET /oauth/callback` exchanges the code, stores the tokens encrypted in KV `qbo-tokens`, and
 * registers the realm in KV `qbo-realms` as connected, with a CDC catch-up requested (for a
 * reconnect, from its watermarks).
 */
export function connectRoutes(settings: ConnectSettings): Router {
  const router = Router();

  router.get("/connect", (req: Request, res: Response) => {
    const wanted = typeof req.query.entities === "string" ? req.query.entities.split(",") : undefined;
    const entities = wanted?.map((w) => entityNameFromAnyCase(w.trim()));
    if (entities?.some((e) => e === undefined)) {
      return void res
        .status(400)
        .type("text")
        .send(`entities must be among: ${ENTITY_NAMES.join(", ")}\n`);
    }
    const state = signState(settings.stateKey, {
      nonce: randomBytes(12).toString("base64url"),
      expiresAt: Date.now() + STATE_TTL_MS,
      entities: (entities as EntityName[] | undefined) ?? [...settings.entities],
    });
    const target = new URL(
      authorizeUrl(settings.authorizeUrl, {
        clientId: settings.oauth.clientId,
        redirectUri: settings.redirectUri,
        state,
      }),
    );
    // Our sandbox lets the caller pick the company that consents; Intuit ignores the parameter.
    if (typeof req.query.realmId === "string") target.searchParams.set("realmId", req.query.realmId);
    res.redirect(302, target.toString());
  });

  router.get("/oauth/callback", async (req: Request, res: Response) => {
    const { code, state, realmId, error } = req.query;
    if (typeof error === "string") return void res.status(400).type("text").send(`QuickBooks said: ${error}\n`);
    if (typeof code !== "string" || typeof realmId !== "string" || typeof state !== "string") {
      return void res.status(400).type("text").send("code, state and realmId are required\n");
    }
    const flow = verifyState(settings.stateKey, state);
    if (!flow) return void res.status(400).type("text").send("unknown or expired state: start again at /connect\n");
    let tokens: Awaited<ReturnType<typeof requestTokens>>;
    try {
      tokens = await requestTokens(
        settings.oauth,
        { grant_type: "authorization_code", code, redirect_uri: settings.redirectUri },
        settings.now,
      );
    } catch (err) {
      settings.logger.warn(
        { err, realmId, intuitTid: err instanceof QuickBooksError ? err.details.intuitTid : undefined },
        "code exchange failed",
      );
      return void res
        .status(502)
        .type("text")
        .send(`QuickBooks did not exchange the code: ${(err as Error).message}\n`);
    }
    await settings.tokens.save(realmId, tokens);
    const now = settings.now();
    const record = await settings.registry.update(realmId, (current) => {
      const { statusReason: _reason, ...kept } = current ?? {};
      return {
        ...kept,
        realmId,
        environment: settings.environment,
        entities: flow.entities,
        connectedAt: current?.connectedAt ?? now,
        status: "connected",
        cdcRequestedAt: now,
        accessTokenExpiresAt: tokens.accessExpiresAt,
        refreshTokenExpiresAt: tokens.refreshExpiresAt,
      };
    });
    settings.logger.info({ realmId, reconnect: record?.connectedAt !== now }, "company connected");
    res.status(200).json({ realmId, status: "connected", entities: flow.entities });
  });

  return router;
}

interface FlowState {
  readonly nonce: string;
  readonly expiresAt: number;
  readonly entities: EntityName[];
}

function signState(key: Uint8Array, flow: FlowState): string {
  const payload = Buffer.from(JSON.stringify(flow)).toString("base64url");
  return `${payload}.${createHmac("sha256", key).update(payload).digest("base64url")}`;
}

function verifyState(key: Uint8Array, state: string): FlowState | undefined {
  const [payload = "", mac = ""] = state.split(".");
  const expected = createHmac("sha256", key).update(payload).digest();
  const given = Buffer.from(mac, "base64url");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  const flow = JSON.parse(Buffer.from(payload, "base64url").toString()) as FlowState;
  return flow.expiresAt > Date.now() ? flow : undefined;
}
