import express, { type Request, type Response, Router } from "express";
import { OAuthError, type OAuthStore } from "./oauth-store.js";

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
  readonly countToken: () => void;
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

  router.post("/oauth2/v1/tokens/bearer", express.urlencoded({ extended: false }), (req: Request, res: Response) => {
    host.countToken();
    const client = basicAuth(req);
    const app = client && host.appByClient(client.id, client.secret);
    if (!app) return void res.status(401).json({ error: "invalid_client" });
    const withHardExpiry = req.get("x-include-refresh-token-hard-expires-in") === "true";
    const body = (req.body ?? {}) as Record<string, string | undefined>;
    try {
      if (body.grant_type === "authorization_code") {
        const { realmId, tokens } = host.oauth.exchangeCode(
          app.appId,
          body.code ?? "",
          body.redirect_uri ?? "",
          withHardExpiry,
        );
        host.connected(app.appId, realmId);
        return void res.json(tokens);
      }
      if (body.grant_type === "refresh_token") {
        return void res.json(host.oauth.refresh(app.appId, body.refresh_token ?? "", withHardExpiry).tokens);
      }
      throw new OAuthError("invalid_request", "grant_type must be authorization_code or refresh_token");
    } catch (err) {
      if (!(err instanceof OAuthError)) throw err;
      res.status(400).json({ error: err.error, error_description: err.description });
    }
  });

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
