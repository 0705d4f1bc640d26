import { Buckets } from "@qbo-webhooks/contracts";
import { RealmRegistry } from "@qbo-webhooks/entity-store";
import { type KV, kvKey, openBucket } from "@qbo-webhooks/messaging";
import { logger, type Pipeline, startPipeline } from "@qbo-webhooks/processor/testing";
import { StoredTokens, TokenCipher } from "@qbo-webhooks/quickbooks";
import type { Company } from "@qbo-webhooks/sandbox";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConnectFlows, FLOW_TTL_MS } from "./connect-flows.js";
import { type ReconcilerService, startReconciler } from "./reconciler-service.js";
import { consent, OPERATOR_TOKEN, reconcilerConfig } from "./testing/reconciler-harness.js";

describe("connecting a company: who may, and what is checked", () => {
  let pipeline: Pipeline;
  let reconciler: ReconcilerService;
  let realms: RealmRegistry;
  let tokensKv: KV;
  beforeAll(async () => {
    pipeline = await startPipeline({ realms: 3 });
    reconciler = await startReconciler(reconcilerConfig(pipeline, "sec"), logger, {
      now: () => pipeline.sandbox.clock.now(),
    });
    realms = new RealmRegistry(await openBucket(pipeline.reader, Buckets.realms, { replicas: 1 }));
    tokensKv = await openBucket(pipeline.reader, Buckets.tokens, { replicas: 1 });
  });
  afterAll(async () => {
    await reconciler?.close();
    await pipeline?.close();
  });
  const company = (i: number) => pipeline.realms[i] as Company;
  /** The revision of a realm's tokens: unchanged means nothing was saved. */
  const tokensOf = async (realmId: string) => (await tokensKv.get(kvKey(realmId)))?.revision;

  it("connect - /connect is on the ops port only and wants the operator token (Bearer, or a browser's Basic password)", async () => {
    const query = `realmId=${company(0).realmId}`;
    expect((await fetch(`http://127.0.0.1:${reconciler.port}/connect?${query}`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${reconciler.port}/metrics`)).status).toBe(404);
    const ops = `http://127.0.0.1:${reconciler.opsPort}/connect?${query}`;
    const without = await fetch(ops, { redirect: "manual" });
    expect(without.status).toBe(401);
    expect(without.headers.get("www-authenticate")).toMatch(/^Basic/);
    const wrong = await fetch(ops, { headers: { authorization: "Bearer not-the-token" }, redirect: "manual" });
    expect(wrong.status).toBe(401);
    const basic = `Basic ${Buffer.from(`operator:${OPERATOR_TOKEN}`).toString("base64")}`;
    const browser = await fetch(ops, { headers: { authorization: basic }, redirect: "manual" });
    expect(browser.status).toBe(302);
    expect(browser.headers.get("set-cookie")).toMatch(/qbo_connect=.*HttpOnly.*SameSite=Lax/i);
    expect(await realms.get(company(0).realmId)).toBeUndefined();
  });

  it("connect - a state is single use, and only the browser that started the flow may finish it", async () => {
    const realmId = company(0).realmId;
    let replay: { url: URL; cookie: string } | undefined;
    const untouched = await tokensOf(realmId);
    const noCookie = await consent(reconciler, `realmId=${realmId}`, ({ url }) => ({ url, cookie: "" }));
    expect(noCookie.status).toBe(400);
    expect(await noCookie.text()).toMatch(/different browser/);
    const otherBrowser = await consent(reconciler, `realmId=${realmId}`, ({ url }) => ({
      url,
      cookie: "qbo_connect=someone-elses",
    }));
    expect(otherBrowser.status).toBe(400);
    expect(await tokensOf(realmId)).toBe(untouched);
    expect(await realms.get(realmId)).toBeUndefined();

    const first = await consent(reconciler, `realmId=${realmId}`, (callback) => {
      replay = callback;
      return callback;
    });
    expect(first.status).toBe(200);
    const revision = await tokensOf(realmId);
    if (!replay) throw new Error("no callback seen");
    const again = await fetch(replay.url, { headers: { cookie: replay.cookie } });
    expect(again.status).toBe(400);
    expect(await again.text()).toMatch(/unknown or was used already/);
    expect(await tokensOf(realmId)).toBe(revision);
  });

  it("connect - tokens that do not open the company the redirect names save nothing", async () => {
    // Consent given for company 1, the redirect altered to name company 2.
    const victim = company(2).realmId;
    const untouched = await tokensOf(victim);
    const answer = await consent(reconciler, `realmId=${company(1).realmId}`, ({ url, cookie }) => {
      url.searchParams.set("realmId", victim);
      return { url, cookie };
    });
    expect(answer.status).toBe(400);
    expect(await answer.text()).toMatch(new RegExp(`do not open company ${victim}`));
    expect(await realms.get(victim)).toBeUndefined();
    expect(await tokensOf(victim)).toBe(untouched);
  });

  it("connect - a company already connected is replaced only by an explicit reconnect", async () => {
    const realmId = company(0).realmId;
    const revision = await tokensOf(realmId);
    const plain = await consent(reconciler, `realmId=${realmId}`);
    expect(plain.status).toBe(409);
    expect(await plain.text()).toMatch(/reconnect=true/);
    expect(await tokensOf(realmId)).toBe(revision);
    const reconnect = await consent(reconciler, `realmId=${realmId}&reconnect=true`);
    expect(reconnect.status).toBe(200);
    expect(await tokensOf(realmId)).toBeGreaterThan(revision ?? 0);
  });

  it("connect - a state older than 10 minutes is refused", async () => {
    let now = Date.now();
    const flows = new ConnectFlows(
      await openBucket(pipeline.reader, Buckets.connectFlows, { replicas: 1 }),
      new Uint8Array(32),
      () => now,
    );
    const { state, browserSecret } = await flows.start({ entities: ["Customer"], reconnect: false });
    now += FLOW_TTL_MS + 1;
    expect(await flows.finish(state, browserSecret)).toEqual({ ok: false, refusal: "expired" });
    const fresh = await flows.start({ entities: ["Customer"], reconnect: false });
    expect(await flows.finish(`${fresh.state.split(".")[0]}.forged`, fresh.browserSecret)).toEqual({
      ok: false,
      refusal: "forged",
    });
    expect((await flows.finish(fresh.state, fresh.browserSecret)).ok).toBe(true);
  });

  it("tokens - a refused client secret (invalid_client) keeps every realm connected and its tokens; readyz and a gauge say why", {
    timeout: 60_000,
  }, async () => {
    const realmId = company(0).realmId;
    expect((await consent(reconciler, `realmId=${realmId}&reconnect=true`)).status).toBe(200);
    const config = reconcilerConfig(pipeline, "wrong-secret");
    const cipher = new TokenCipher(config.tokenKey);
    const stored = async () => {
      const entry = await tokensKv.get(kvKey(realmId));
      const tokens = entry && StoredTokens.parse(JSON.parse(cipher.decrypt(entry.string())));
      return (
        tokens && { accessToken: tokens.accessToken, refreshToken: tokens.refreshToken, refused: tokens.refusedAt }
      );
    };
    const before = await stored();
    await reconciler.close();
    reconciler = await startReconciler({ ...config, clientSecret: "rotated-away" }, logger, {
      now: () => pipeline.sandbox.clock.now(),
    });
    // Access tokens live an hour: 50 minutes on, the leader refreshes them.
    await pipeline.sandbox.clock.advance(50 * 60_000);
    const readyz = async () => {
      const answer = await fetch(`http://127.0.0.1:${reconciler.opsPort}/readyz`);
      return `${answer.status} ${await answer.text()}`;
    };
    await expect.poll(readyz, { timeout: 30_000 }).toMatch(/^503 not ready\nQuickBooks refuses our client credentials/);
    const metrics = await (await fetch(`http://127.0.0.1:${reconciler.opsPort}/metrics`)).text();
    expect(metrics).toMatch(/^qbo_oauth_client_refused(\{[^}]*\})? 1$/m);
    expect(metrics).toMatch(/^qbo_token_refreshes_total\{[^}]*result="client_refused"[^}]*\} [1-9]/m);
    expect((await realms.get(realmId))?.status).toBe("connected");
    expect(await stored()).toEqual(before);
  });
});
