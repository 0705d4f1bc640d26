import { createHash, timingSafeEqual } from "node:crypto";
import { ENTITY_NAMES, type EntityName, entityNameFromAnyCase } from "@qbo-webhooks/contracts";
import type { RealmRegistry } from "@qbo-webhooks/entity-store";
import type { Logger } from "@qbo-webhooks/observability";
import {
  authorizeUrl,
  fixedToken,
  type IssuedTokens,
  type KvTokenSource,
  type OAuthEndpoint,
  QuickBooksClient,
  QuickBooksError,
  requestTokens,
} from "@qbo-webhooks/quickbooks";
import { parse as parseCookies } from "cookie";
import { type Request, type Response, Router } from "express";
import { type ConnectFlows, FLOW_REFUSALS, FLOW_TTL_MS } from "./connect-flows.js";

export interface ConnectSettings {
  readonly oauth: OAuthEndpoint;
  readonly authorizeUrl: string;
  readonly apiBaseUrl: string;
  readonly redirectUri: string;
  readonly environment: "production" | "sandbox";
  readonly entities: readonly EntityName[];
  /** The bearer token `/connect` requires; without one, `/connect` refuses everyone. */
  readonly operatorToken: string | undefined;
  readonly flows: ConnectFlows;
  readonly tokens: KvTokenSource;
  readonly registry: RealmRegistry;
  readonly logger: Logger;
  readonly now: () => number;
}

/** The cookie that binds a flow to the browser that started it. */
const FLOW_COOKIE = "qbo_connect";

/**
 * `GET /connect`, for operators (on the ops port, with the operator token as a Bearer token, or as
 * the password of Basic authentication so a browser can ask for it):
 * starts a flow and sends the browser to Intuit's consent page (QBO.md §7). `?reconnect=true` is
 * needed to replace the tokens of a company already connected; `?entities=` narrows the types.
 */
export function connectRoute(settings: ConnectSettings): Router {
  const router = Router();
  router.get("/connect", async (req: Request, res: Response) => {
    if (settings.operatorToken === undefined) {
      return void res.status(403).type("text").send("connecting is off: set OPERATOR_TOKEN to turn it on\n");
    }
    if (!operatorTokenMatches(req.get("authorization"), settings.operatorToken)) {
      // Basic lets a browser ask for it (any user name, the token as password); Bearer is for scripts.
      return void res
        .status(401)
        .set("www-authenticate", 'Basic realm="qbo-webhooks connect", charset="UTF-8"')
        .type("text")
        .send(
          "the operator token is required: Authorization: Bearer $OPERATOR_TOKEN, or in a browser any user name with the token as password\n",
        );
    }
    const wanted = typeof req.query.entities === "string" ? req.query.entities.split(",") : undefined;
    const entities = wanted?.map((w) => entityNameFromAnyCase(w.trim()));
    if (entities?.some((e) => e === undefined)) {
      return void res
        .status(400)
        .type("text")
        .send(`entities must be among: ${ENTITY_NAMES.join(", ")}\n`);
    }
    const { state, browserSecret } = await settings.flows.start({
      entities: entities?.filter((e) => e !== undefined) ?? [...settings.entities],
      reconnect: req.query.reconnect === "true",
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
    res.cookie(FLOW_COOKIE, browserSecret, {
      httpOnly: true,
      // Intuit's redirect back is a top-level GET navigation: Lax cookies go with it.
      sameSite: "lax",
      secure: settings.redirectUri.startsWith("https:"),
      path: new URL(settings.redirectUri).pathname,
      maxAge: FLOW_TTL_MS,
    });
    res.redirect(302, target.toString());
  });
  return router;
}

/**
 * `GET /oauth/callback` (public: Intuit sends the browser here). Saves nothing unless the state is
 * ours, fresh, unused and came back to the browser that started it; the realm is not connected
 * already (or the flow is a reconnect); and the new tokens read that very company's `companyinfo`.
 * Then stores the tokens encrypted in KV `qbo-tokens` and registers the realm as connected, with a
 * CDC requested.
 */
export function callbackRoute(settings: ConnectSettings): Router {
  const router = Router();
  const refuse = (res: Response, status: number, why: string) =>
    void res.status(status).type("text").send(`not connected: ${why}\n`);

  router.get("/oauth/callback", async (req: Request, res: Response) => {
    const { code, state, realmId, error } = req.query;
    if (typeof error === "string") return refuse(res, 400, `QuickBooks said: ${error}`);
    if (typeof code !== "string" || typeof realmId !== "string" || typeof state !== "string") {
      return refuse(res, 400, "code, state and realmId are required");
    }
    const cookies = parseCookies(req.get("cookie") ?? "");
    const finished = await settings.flows.finish(state, cookies[FLOW_COOKIE]);
    res.clearCookie(FLOW_COOKIE, { path: new URL(settings.redirectUri).pathname });
    if (!finished.ok) {
      settings.logger.warn({ realmId, refusal: finished.refusal }, "OAuth callback refused");
      return refuse(res, 400, `${FLOW_REFUSALS[finished.refusal]}; start again at /connect`);
    }
    const { flow } = finished;
    const existing = await settings.registry.get(realmId);
    if (existing?.status === "connected" && !flow.reconnect) {
      return refuse(
        res,
        409,
        `company ${realmId} is connected already; to replace its tokens use /connect?reconnect=true`,
      );
    }
    let tokens: IssuedTokens;
    try {
      tokens = await requestTokens(
        settings.oauth,
        { grant_type: "authorization_code", code, redirect_uri: settings.redirectUri },
        settings.now,
      );
      const client = new QuickBooksClient({
        baseUrl: settings.apiBaseUrl,
        tokens: fixedToken(tokens.accessToken),
        logger: settings.logger,
      });
      await client.companyInfo(realmId);
    } catch (err) {
      if (!(err instanceof QuickBooksError)) throw err;
      settings.logger.warn({ err, realmId, intuitTid: err.details.intuitTid }, "connect refused by QuickBooks");
      const theirs = err.code === "QBO_UNAUTHORIZED" || err.code === "QBO_BAD_RESPONSE" || err.code === "QBO_FORBIDDEN";
      return refuse(
        res,
        theirs ? 400 : 502,
        theirs
          ? `the consent's tokens do not open company ${realmId} (${err.message})`
          : `QuickBooks could not be asked (${err.message}); start again at /connect`,
      );
    }
    await settings.tokens.save(realmId, tokens);
    const now = settings.now();
    const record = await settings.registry.update(realmId, (current) => {
      const { statusReason: _reason, disconnectedBy: _by, ...kept } = current ?? {};
      return {
        ...kept,
        realmId,
        environment: settings.environment,
        entities: flow.entities,
        // Registered by a resource and awaiting consent until now: connected from this moment.
        connectedAt: current && current.status !== "awaiting_consent" ? current.connectedAt : now,
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

/** Constant-time comparison of the token in `Authorization` (Bearer, or Basic's password) with the expected one. */
function operatorTokenMatches(header: string | undefined, expected: string): boolean {
  const [scheme = "", value = ""] = (header ?? "").split(/\s+/, 2);
  let given: string | undefined;
  if (/^bearer$/i.test(scheme)) given = value;
  else if (/^basic$/i.test(scheme)) {
    const decoded = Buffer.from(value, "base64").toString("utf8");
    given = decoded.slice(decoded.indexOf(":") + 1);
  }
  if (!given) return false;
  const digest = (text: string) => createHash("sha256").update(text).digest();
  return timingSafeEqual(digest(given), digest(expected));
}
