import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Company } from "../company/company.js";
import { Sandbox } from "../sandbox.js";
import type { TokenSet } from "./oauth-store.js";

const DAY = 24 * 3600 * 1000;
const basic = `Basic ${Buffer.from("client:secret").toString("base64")}`;

describe("sandbox REST API", () => {
  let sandbox: Sandbox;
  let company: Company;
  let tokens: TokenSet;

  beforeEach(async () => {
    sandbox = await Sandbox.start({ speed: 0, seed: 3 });
    sandbox.registerApp({
      appId: "app",
      clientId: "client",
      clientSecret: "secret",
      verifierToken: "v",
      redirectUris: ["http://localhost:9/callback"],
    });
    company = sandbox.createCompany();
    tokens = sandbox.connect("app", company.realmId);
  });
  afterEach(() => sandbox.close());

  const api = (path: string, init: RequestInit = {}, token = tokens.access_token) =>
    fetch(`${sandbox.url}/v3/company/${company.realmId}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${token}`, accept: "application/json", ...init.headers },
    });
  const tokenRequest = (form: Record<string, string>, headers: Record<string, string> = {}) =>
    fetch(`${sandbox.url}/oauth2/v1/tokens/bearer`, {
      method: "POST",
      headers: { authorization: basic, "content-type": "application/x-www-form-urlencoded", ...headers },
      body: new URLSearchParams(form),
    });

  describe("OAuth (QBO.md §7)", () => {
    it("oauth - authorize redirects back with code, state and realmId; the code buys tokens and connects the company", async () => {
      const authorize = new URL(`${sandbox.url}/connect/oauth2`);
      authorize.search = new URLSearchParams({
        client_id: "client",
        response_type: "code",
        scope: "com.intuit.quickbooks.accounting",
        redirect_uri: "http://localhost:9/callback",
        state: "xyz",
      }).toString();
      const redirect = await fetch(authorize, { redirect: "manual" });
      expect(redirect.status).toBe(302);
      const back = new URL(redirect.headers.get("location") ?? "");
      expect(back.searchParams.get("state")).toBe("xyz");
      const realmId = back.searchParams.get("realmId") ?? "";
      expect(realmId).toMatch(/^\d{16}$/);

      const response = await tokenRequest(
        {
          grant_type: "authorization_code",
          code: back.searchParams.get("code") ?? "",
          redirect_uri: "http://localhost:9/callback",
        },
        { "x-include-refresh-token-hard-expires-in": "true" },
      );
      const body = (await response.json()) as TokenSet;
      expect(body).toMatchObject({ token_type: "bearer", expires_in: 3600, x_refresh_token_expires_in: 8726400 });
      expect(body.x_refresh_token_hard_expires_in).toBeGreaterThan(0);
      const read = await fetch(`${sandbox.url}/v3/company/${realmId}/query?query=select%20count(*)%20from%20Customer`, {
        headers: { authorization: `Bearer ${body.access_token}` },
      });
      expect(read.status).toBe(200);
      expect(response.headers.get("intuit_tid")).toEqual(expect.any(String));
    });

    it("oauth - refresh rotates: the new token works, the replaced one gets 400 invalid_grant", async () => {
      const first = (await (
        await tokenRequest({ grant_type: "refresh_token", refresh_token: tokens.refresh_token })
      ).json()) as TokenSet;
      expect(first.refresh_token).not.toBe(tokens.refresh_token);
      const replayed = await tokenRequest({ grant_type: "refresh_token", refresh_token: tokens.refresh_token });
      expect(replayed.status).toBe(400);
      expect(await replayed.json()).toEqual({ error: "invalid_grant", error_description: "Token invalid" });
      const second = await tokenRequest({ grant_type: "refresh_token", refresh_token: first.refresh_token });
      expect(second.status).toBe(200);
    });

    it("oauth - a wrong client secret is 401 invalid_client", async () => {
      const response = await fetch(`${sandbox.url}/oauth2/v1/tokens/bearer`, {
        method: "POST",
        headers: { authorization: `Basic ${Buffer.from("client:nope").toString("base64")}` },
        body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: tokens.refresh_token }),
      });
      expect(response.status).toBe(401);
    });

    it("oauth - injected token faults: invalid_grant (400), invalid_client (401), 503 page; the grant stays usable and the log keeps sandbox time", async () => {
      await sandbox.clock.advance(3 * DAY); // sandbox time is now days ahead of the wall clock
      const refresh = () => tokenRequest({ grant_type: "refresh_token", refresh_token: tokens.refresh_token });
      for (const [kind, status, error] of [
        ["invalidGrant", 400, "invalid_grant"],
        ["invalidClient", 401, "invalid_client"],
        ["serverError", 503, undefined],
      ] as const) {
        sandbox.setApiBehaviour({ tokenFaults: [{ kind, count: 1 }] });
        const response = await refresh();
        expect(response.status, kind).toBe(status);
        if (error) expect(await response.json()).toMatchObject({ error });
      }
      expect((await refresh()).status).toBe(200);
      expect(sandbox.tokenLog().map((r) => [r.status, r.at])).toEqual(
        [400, 401, 503, 200].map((status) => [status, sandbox.clock.now()]),
      );
    });

    it("faults - fault times are the sandbox's, not the wall clock's", async () => {
      await sandbox.clock.advance(3 * DAY);
      tokens = sandbox.connect("app", company.realmId);
      sandbox.setApiBehaviour({ lowerCaseFaults: true });
      const lower = (await (await api("/customer/404")).json()) as { time: number };
      expect(lower.time).toBe(sandbox.clock.now());
      sandbox.setApiBehaviour({ lowerCaseFaults: false });
      const upper = (await (await api("/customer/404")).json()) as { time: string };
      expect(Date.parse(upper.time)).toBe(sandbox.clock.now());
    });

    it("oauth - access tokens expire after an hour of sandbox time: 401 in QuickBooks' lower-case fault (QBO.md §8)", async () => {
      await sandbox.clock.advance(3601 * 1000);
      const response = await api("/customer/1");
      expect(response.status).toBe(401);
      const body = (await response.json()) as { fault: { error: { code: string; detail: string }[]; type: string } };
      expect(body.fault.type).toBe("AUTHENTICATION");
      expect(body.fault.error[0]).toMatchObject({ code: "3200", detail: expect.stringMatching(/Token expired/) });
    });

    it("oauth - revoke disconnects: the access token stops working and the refresh token is invalid_grant", async () => {
      const revoke = await fetch(`${sandbox.url}/v2/oauth2/tokens/revoke`, {
        method: "POST",
        headers: { authorization: basic, "content-type": "application/json" },
        body: JSON.stringify({ token: tokens.refresh_token }),
      });
      expect(revoke.status).toBe(200);
      expect((await api("/customer/1")).status).toBe(401);
      expect((await tokenRequest({ grant_type: "refresh_token", refresh_token: tokens.refresh_token })).status).toBe(
        400,
      );
    });
  });

  describe("read and query (QBO.md §5)", () => {
    it("read - returns the entity under its name; a missing one is 400 with code 610 (QBO.md §8)", async () => {
      const customer = company.create("Customer");
      const response = await api(`/customer/${customer.Id}?minorversion=75`);
      expect(await response.json()).toMatchObject({
        Customer: { Id: customer.Id, SyncToken: "0" },
        time: expect.any(String),
      });
      const missing = await api("/customer/999");
      expect(missing.status).toBe(400);
      const fault = (await missing.json()) as { Fault: { Error: { code: string }[]; type: string } };
      expect(fault.Fault).toMatchObject({ type: "ValidationFault", Error: [{ code: "610" }] });
    });

    it("query - Id IN (...) and paging with STARTPOSITION/MAXRESULTS; count(*) gives totalCount", async () => {
      for (let i = 0; i < 5; i++) company.create("Vendor");
      const ids = await api(`/query?query=${encodeURIComponent("select * from Vendor where Id in ('2','4','9')")}`);
      expect(
        ((await ids.json()) as { QueryResponse: { Vendor: { Id: string }[] } }).QueryResponse.Vendor.map((v) => v.Id),
      ).toEqual(["2", "4"]);
      const page = await api(`/query?query=${encodeURIComponent("SELECT * FROM Vendor STARTPOSITION 3 MAXRESULTS 2")}`);
      expect(await page.json()).toMatchObject({
        QueryResponse: { startPosition: 3, maxResults: 2, Vendor: [{ Id: "3" }, { Id: "4" }] },
      });
      const count = await api(`/query?query=${encodeURIComponent("select count(*) from Vendor")}`);
      expect(await count.json()).toMatchObject({ QueryResponse: { totalCount: 5 } });
    });

    it("query - MetaData.LastUpdatedTime > t finds what changed since, also as POST application/text", async () => {
      const old = company.create("Item");
      await sandbox.clock.advance(60_000);
      const since = new Date(sandbox.clock.now()).toISOString();
      await sandbox.clock.advance(60_000);
      company.update("Item", old.Id);
      company.create("Item");
      const response = await api("/query", {
        method: "POST",
        headers: { "content-type": "application/text" },
        body: `select * from Item where MetaData.LastUpdatedTime > '${since}' orderby MetaData.LastUpdatedTime`,
      });
      const items = ((await response.json()) as { QueryResponse: { Item: { Id: string }[] } }).QueryResponse.Item;
      expect(items.map((i) => i.Id)).toEqual([old.Id, "2"]);
    });

    it.each([
      ["MAXRESULTS over 1000", "select * from Customer maxresults 1001"],
      ["OR", "select * from Customer where Id = '1' or Id = '2'"],
      ["Id with >", "select * from Customer where Id > '1'"],
      ["an unknown table", "select * from Widget"],
      ["garbage", "delete everything"],
    ])("query - refuses %s with a 400 fault", async (_name, query) => {
      const response = await api(`/query?query=${encodeURIComponent(query)}`);
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ Fault: { type: "ValidationFault" } });
    });

    it("minorversion - below 75 is refused (QBO.md §5)", async () => {
      expect((await api("/query?query=select%20*%20from%20Customer&minorversion=74")).status).toBe(400);
      expect((await api("/query?query=select%20*%20from%20Customer&minorversion=75")).status).toBe(200);
    });
  });

  describe("CDC (QBO.md §4)", () => {
    it("cdc - returns changed objects and then deleted ones with status Deleted", async () => {
      const since = new Date(sandbox.clock.now() - 1000).toISOString();
      const a = company.create("Customer");
      const b = company.create("Customer");
      company.delete("Customer", a.Id);
      company.create("Estimate");
      const response = await api(
        `/cdc?entities=Customer,Estimate&changedSince=${encodeURIComponent(since)}&minorversion=75`,
      );
      const body = (await response.json()) as { CDCResponse: { QueryResponse: Record<string, unknown>[] }[] };
      const [customers, estimates] = body.CDCResponse[0]?.QueryResponse ?? [];
      expect(customers?.Customer).toEqual([
        expect.objectContaining({ Id: b.Id }),
        expect.objectContaining({ Id: a.Id, status: "Deleted" }),
      ]);
      expect(estimates?.Estimate).toHaveLength(1);
    });

    it("cdc - at most 1,000 objects in all entities together", async () => {
      const since = new Date(sandbox.clock.now() - 1000).toISOString();
      for (let i = 0; i < 700; i++) company.create("Customer");
      for (let i = 0; i < 700; i++) company.create("Vendor");
      const response = await api(`/cdc?entities=Customer,Vendor&changedSince=${encodeURIComponent(since)}`);
      const [customers, vendors] =
        ((await response.json()) as { CDCResponse: { QueryResponse: { totalCount: number }[] }[] }).CDCResponse[0]
          ?.QueryResponse ?? [];
      expect((customers?.totalCount ?? 0) + (vendors?.totalCount ?? 0)).toBe(1000);
    });

    it("cdc - refuses a look-back over 30 days and the entities CDC does not cover", async () => {
      const old = new Date(sandbox.clock.now() - 31 * DAY).toISOString();
      expect((await api(`/cdc?entities=Customer&changedSince=${encodeURIComponent(old)}`)).status).toBe(400);
      const recent = new Date(sandbox.clock.now() - DAY).toISOString();
      expect((await api(`/cdc?entities=TimeActivity&changedSince=${encodeURIComponent(recent)}`)).status).toBe(400);
    });
  });

  describe("limits and faults (QBO.md §6, §8)", () => {
    it("throttle - past 10 requests a second per realm and app: 429 with an XML fault, counted", async () => {
      const statuses = await Promise.all(Array.from({ length: 15 }, () => api("/customer/1").then((r) => r.status)));
      expect(statuses.filter((s) => s === 429)).toHaveLength(5);
      const throttled = await api("/customer/1");
      expect(throttled.headers.get("content-type")).toMatch(/xml/);
      expect(await throttled.text()).toMatch(/ThrottleExceeded.*statusCode=429/);
      expect(sandbox.apiStats().throttled[company.realmId]).toBe(6);
    });

    it("throttle - 500 a minute per realm, and the old sandbox's 403 variant", async () => {
      sandbox.setApiBehaviour({ requestsPerMinute: 3, requestsPerSecond: 100, throttleStatus: 403 });
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await api("/customer/1")).status);
      expect(statuses).toEqual([400, 400, 400, 403]);
    });

    it("faults - injected 500 is a JSON SERVICE fault; 502 and 503 are nginx HTML pages", async () => {
      sandbox.setApiBehaviour({
        serverErrors: [
          { status: 500, count: 1 },
          { status: 502, count: 1 },
          { status: 503, count: 1 },
        ],
      });
      const r500 = await api("/customer/1");
      expect(r500.status).toBe(500);
      expect(await r500.json()).toMatchObject({ Fault: { type: "SERVICE" } });
      const r502 = await api("/customer/1");
      expect([r502.status, r502.headers.get("content-type")]).toEqual([502, "text/html; charset=utf-8"]);
      expect(await r502.text()).toMatch(/nginx/);
      expect((await api("/customer/1")).status).toBe(503);
      expect((await api("/customer/1")).status).toBe(400);
      expect(sandbox.apiStats().serverErrors[company.realmId]).toBe(3);
    });

    it("faults - malformed 200 answers: cut short, wrongly typed, HTML; only on the endpoint named, only while counted", async () => {
      const customer = company.create("Customer");
      sandbox.setApiBehaviour({
        malformedAnswers: [
          { kind: "truncated", endpoint: "read", count: 1 },
          { kind: "wrongTypes", endpoint: "read", count: 1 },
          { kind: "html", endpoint: "query", count: 1 },
        ],
      });
      const cut = await (await api(`/customer/${customer.Id}`)).text();
      expect(() => JSON.parse(cut)).toThrow();
      expect(cut.length).toBeGreaterThan(10);
      const swapped: unknown = await (await api(`/customer/${customer.Id}`)).json();
      expect(swapped).toMatchObject({ Customer: { Id: customer.Id.length, SyncToken: 1 } });
      expect((await api(`/customer/${customer.Id}`)).status).toBe(200);
      expect((await api(`/customer/${customer.Id}`)).headers.get("content-type")).toMatch(/json/);
      const page = await api("/query?query=select%20*%20from%20Customer");
      expect([page.status, page.headers.get("content-type")]).toEqual([200, "text/html; charset=utf-8"]);
      expect(sandbox.apiStats().malformedAnswers).toBe(3);
    });

    it("faults - lower-case fault variant and added latency", async () => {
      sandbox.setApiBehaviour({ lowerCaseFaults: true, latencyMs: 150 });
      const started = performance.now();
      const response = await api("/customer/404");
      expect(performance.now() - started).toBeGreaterThanOrEqual(140);
      expect(await response.json()).toMatchObject({ fault: { type: "ValidationFault", error: [{ code: "610" }] } });
    });

    it("stats - counts requests per realm and endpoint", async () => {
      await api("/customer/1");
      await api("/query?query=select%20*%20from%20Customer");
      await api(
        `/cdc?entities=Customer&changedSince=${encodeURIComponent(new Date(sandbox.clock.now()).toISOString())}`,
      );
      expect(sandbox.apiStats().requests[company.realmId]).toEqual({ read: 1, query: 1, cdc: 1 });
    });
  });
});
