import { setTimeout as delay } from "node:timers/promises";
import express, { type Request, type Response, Router } from "express";
import { OAuthError, type OAuthStore, type TokenSet } from "./oauth-store.js";
import { gatewayPage } from "./qbo-faults.js";

/** What the OAuth routes need from the sandbox. */
export interface OAuthHost {
  readonly oauth: OAuthStore;
  /** The app whose client id and secret these are, or undefined. */
  readonly appByClient: (
    clientId: string,
    clientSecret?: string,
  ) => { appId: string; redirectUris: string[] } | undefined;
  /** The company an authorization connects: the one asked for, or a new one. */
  readonly companyForConsent: (realmId: string | undefined) => string;
  readonly connected: (appId: string, realmId: string) => void;
  readonly disconnected: (appId: string, realmId: string) => void;
  /** Counts a token request and draws the faults injected into it. */
  readonly tokenRequest: () => { delayMs?: number; refuse?: "serverError" | "invalidClient" | "invalidGrant" };
  readonly tokenAnswered: (record: TokenRecord) => void;
  /** The sandbox's time, for what the token log records. */
  readonly now: () => number;
}

/** One answer of the token endpoint, kept for tests that follow every rotation. */
export interface TokenRecord {
  /** Sandbox time, ms since the epoch. */
  readonly at: number;
  /** Who asked: the client's `User-Agent`. */
  readonly userAgent: string;
  readonly grantType: string;
  readonly status: number;
  /** The client had closed the connection before this answer: it never arrived. */
  readonly clientGone: boolean;
  readonly realmId?: string;
  /** The refresh token issued, when one was. */
  readonly refreshToken?: string;
}

/**
 * OAuth 2.0 as Intuit runs it (QBO.md §7): the authorize page (consent is automatic here), the
 * token endpoint with both grants, and revoke.
 */
export function oauthRouter(host: OAuthHost): Router {
  const router = Router();

  router.get("/connect/oauth2", (req: Request, res: Response) => {
    const clientId = String(req.query.client_id ?? "");
    const redirectUri = String(req.query.redirect_uri ?? "");
    const app = host.appByClient(clientId);
    if (!app) return void res.status(400).send("invalid client_id");
    if (req.query.response_type !== "code") return void res.status(400).send("response_type must be code");
    if (app.redirectUris.length > 0 && !app.redirectUris.includes(redirectUri)) {
      return void res.status(400).send("redirect_uri is not registered for this app");
    }
    const realmId = host.companyForConsent(typeof req.query.realmId === "string" ? req.query.realmId : undefined);
    const code = host.oauth.issueCode(app.appId, realmId, redirectUri);
    const target = new URL(redirectUri);
    target.searchParams.set("code", code);
    target.searchParams.set("state", String(req.query.state ?? ""));
    target.searchParams.set("realmId", realmId);
    res.redirect(302, target.toString());
  });

  router.post(
    "/oauth2/v1/tokens/bearer",
    express.urlencoded({ extended: false }),
    async (req: Request, res: Response) => {
      const body = (req.body ?? {}) as Record<string, string | undefined>;
      // A client that gave up (timed out, or died) before the answer: whatever is issued now reaches nobody.
      let clientGone = false;
      res.once("close", () => {
        if (!res.writableFinished) clientGone = true;
      });
      const answered = (status: number, issued?: { realmId: string; tokens: TokenSet }) =>
        host.tokenAnswered({
          at: host.now(),
          userAgent: req.get("user-agent") ?? "",
          grantType: body.grant_type ?? "",
          status,
          clientGone,
          ...(issued ? { realmId: issued.realmId, refreshToken: issued.tokens.refresh_token } : {}),
        });
      const fault = host.tokenRequest();
      if (fault.delayMs) await delay(fault.delayMs);
      if (fault.refuse === "serverError") {
        answered(503);
        return gatewayPage(res, 503);
      }
      const client = basicAuth(req);
      const app = fault.refuse === "invalidClient" ? undefined : client && host.appByClient(client.id, client.secret);
      if (!app) {
        answered(401);
        return void res.status(401).json({ error: "invalid_client" });
      }
      if (fault.refuse === "invalidGrant") {
        answered(400);
        return void res
          .status(400)
          .json({ error: "invalid_grant", error_description: "Incorrect Token type or clientID" });
      }
      const withHardExpiry = req.get("x-include-refresh-token-hard-expires-in") === "true";
      try {
        if (body.grant_type === "authorization_code") {
          const issued = host.oauth.exchangeCode(app.appId, body.code ?? "", body.redirect_uri ?? "", withHardExpiry);
          host.connected(app.appId, issued.realmId);
          answered(200, issued);
          return void res.json(issued.tokens);
        }
        if (body.grant_type === "refresh_token") {
          const issued = host.oauth.refresh(app.appId, body.refresh_token ?? "", withHardExpiry);
          answered(200, issued);
          return void res.json(issued.tokens);
        }
        throw new OAuthError("invalid_request", "grant_type must be authorization_code or refresh_token");
      } catch (err) {
        if (!(err instanceof OAuthError)) throw err;
        answered(400);
        res.status(400).json({ error: err.error, error_description: err.description });
      }
    },
  );

  router.post("/v2/oauth2/tokens/revoke", express.json(), (req: Request, res: Response) => {
    const client = basicAuth(req);
    const app = client && host.appByClient(client.id, client.secret);
    if (!app) return void res.status(401).json({ error: "invalid_client" });
    const revoked = host.oauth.revoke(app.appId, String((req.body as { token?: unknown } | undefined)?.token ?? ""));
    if (revoked) host.disconnected(app.appId, revoked.realmId);
    res.status(200).end();
  });

  return router;
}

function basicAuth(req: Request): { id: string; secret: string } | undefined {
  const match = /^basic\s+(.+)$/i.exec(req.get("authorization") ?? "");
  if (!match?.[1]) return undefined;
  const [id = "", secret = ""] = Buffer.from(match[1], "base64").toString().split(":");
  return { id, secret };
}
