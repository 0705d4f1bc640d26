import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { inspect } from "node:util";
import { createLogger } from "@qbo-webhooks/observability";
import { type Company, Sandbox, type TokenSet } from "@qbo-webhooks/sandbox";
import { Registry } from "prom-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { requestTokens } from "./oauth.js";
import { IDS_PER_QUERY, QuickBooksClient, type TokenSource } from "./quickbooks-client.js";
import { QuickBooksError } from "./quickbooks-error.js";
import { RealmRateLimiter } from "./realm-rate-limiter.js";

const logger = createLogger({ service: "test", level: "silent" });

/** Tokens kept in memory, refreshed at the sandbox's token endpoint (rotating refresh tokens, QBO.md §7). */
class SandboxTokens implements TokenSource {
  refreshes = 0;
  constructor(
    private readonly sandboxUrl: string,
    private tokens: TokenSet,
  ) {}
  async accessToken(): Promise<string> {
    return this.tokens.access_token;
  }
  async refresh(): Promise<string> {
    this.refreshes++;
    const response = await fetch(`${this.sandboxUrl}/oauth2/v1/tokens/bearer`, {
      method: "POST",
      headers: { authorization: `Basic ${Buffer.from("client:secret").toString("base64")}` },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: this.tokens.refresh_token }),
    });
    this.tokens = (await response.json()) as TokenSet;
    return this.tokens.access_token;
  }
}

describe("quickbooks-client against the sandbox", () => {
  let sandbox: Sandbox;
  let company: Company;
  let tokens: SandboxTokens;
  let registry: Registry;
  const client = (options: Partial<ConstructorParameters<typeof QuickBooksClient>[0]> = {}) =>
    new QuickBooksClient({ baseUrl: sandbox.url, tokens, logger, registry, ...options });

  beforeEach(async () => {
    sandbox = await Sandbox.start({ speed: 0 });
    sandbox.registerApp({ appId: "app", clientId: "client", clientSecret: "secret", verifierToken: "v" });
    company = sandbox.createCompany();
    tokens = new SandboxTokens(sandbox.url, sandbox.connect("app", company.realmId));
    registry = new Registry();
  });
  afterEach(() => sandbox.close());

  it("quickbooks - reads an entity and counts the request by operation and status", async () => {
    const customer = company.create("Customer");
    const read = await client().read(company.realmId, "Customer", customer.Id);
    expect(read).toMatchObject({ Id: customer.Id, SyncToken: "0" });
    expect(await registry.metrics()).toMatch(/qbo_api_requests_total\{operation="read",status="200"\} 1/);
  });

  it("quickbooks - a missing entity is QBO_NOT_FOUND, with QuickBooks' intuit_tid (QBO.md §8)", async () => {
    const error = await client()
      .read(company.realmId, "Customer", "404")
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(QuickBooksError);
    expect((error as QuickBooksError).code).toBe("QBO_NOT_FOUND");
    expect((error as QuickBooksError).details.intuitTid).toEqual(expect.any(String));
  });

  it("quickbooks - logs QuickBooks' intuit_tid with every failure (QBO.md §8)", async () => {
    const lines: string[] = [];
    const { PassThrough } = await import("node:stream");
    const destination = new PassThrough();
    destination.on("data", (chunk: Buffer) => lines.push(chunk.toString()));
    const { createLogger: make } = await import("@qbo-webhooks/observability");
    const logged = new QuickBooksClient({
      baseUrl: sandbox.url,
      tokens,
      logger: make({ service: "t", level: "warn", destination }),
    });
    await logged.read(company.realmId, "Customer", "404").catch(() => undefined);
    await expect.poll(() => lines.join("")).toMatch(/"intuitTid":"[0-9a-f-]{36}"/);
  });

  it("quickbooks - readMany batches ids into Id IN queries of 100 and skips what does not exist (QBO.md §5)", async () => {
    const ids = Array.from({ length: 250 }, () => company.create("Vendor").Id);
    const found = await client().readMany(company.realmId, "Vendor", [...ids, "9999", ids[0] ?? ""]);
    expect(found.size).toBe(250);
    expect(sandbox.apiStats().requests[company.realmId]?.query).toBe(Math.ceil(250 / IDS_PER_QUERY) + 0);
  });

  it("quickbooks - an expired access token is refreshed once and the call retried (QBO.md §7)", async () => {
    const customer = company.create("Customer");
    await sandbox.clock.advance(3601 * 1000);
    await expect(client().read(company.realmId, "Customer", customer.Id)).resolves.toMatchObject({ Id: customer.Id });
    expect(tokens.refreshes).toBe(1);
  });

  it("quickbooks - waits out throttling before trying the realm again (QBO.md §6)", async () => {
    company.create("Customer");
    sandbox.setApiBehaviour({ requestsPerSecond: 2 });
    const eager = client({
      limiter: new RealmRateLimiter({ perMinute: 500, perSecond: 100, concurrent: 10 }),
      throttleWaitMs: 1100,
    });
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: 4 }, () => eager.read(company.realmId, "Customer", "1")));
    expect(results).toHaveLength(4);
    expect(sandbox.apiStats().throttled[company.realmId]).toBeGreaterThan(0);
    expect(performance.now() - started).toBeGreaterThanOrEqual(1000);
  });

  it("quickbooks - the default limiter keeps a burst of 40 calls under QuickBooks' limits: no 429 (QBO.md §6)", async () => {
    company.create("Customer");
    const shared = client();
    await Promise.all(Array.from({ length: 40 }, () => shared.read(company.realmId, "Customer", "1")));
    expect(sandbox.apiStats().throttled[company.realmId] ?? 0).toBe(0);
  });

  it("quickbooks - retries an nginx 502 page, and reports QBO_SERVER when attempts run out (QBO.md §8)", async () => {
    company.create("Customer");
    sandbox.setApiBehaviour({ serverErrors: [{ status: 502, count: 1 }] });
    await expect(client().read(company.realmId, "Customer", "1")).resolves.toMatchObject({ Id: "1" });
    sandbox.setApiBehaviour({ serverErrors: [{ status: 503, count: 1 }] });
    const error = await client({ maxAttempts: 1 })
      .read(company.realmId, "Customer", "1")
      .catch((err: unknown) => err);
    expect((error as QuickBooksError).code).toBe("QBO_SERVER");
  });

  it("quickbooks - a slow answer is QBO_TIMEOUT", async () => {
    company.create("Customer");
    sandbox.setApiBehaviour({ latencyMs: 400 });
    const error = await client({ timeoutMs: 100, maxAttempts: 1 })
      .read(company.realmId, "Customer", "1")
      .catch((e: unknown) => e);
    expect((error as QuickBooksError).code).toBe("QBO_TIMEOUT");
  });
});

describe("quickbooks-client: malformed answers are typed errors", () => {
  let sandbox: Sandbox;
  let company: Company;
  let tokens: TokenSet;
  beforeEach(async () => {
    sandbox = await Sandbox.start({ speed: 0 });
    sandbox.registerApp({ appId: "app", clientId: "client", clientSecret: "secret", verifierToken: "v" });
    company = sandbox.createCompany();
    tokens = sandbox.connect("app", company.realmId);
    company.create("Customer");
  });
  afterEach(() => sandbox.close());

  const calls = {
    read: { endpoint: "read", call: (c: QuickBooksClient, realm: string) => c.read(realm, "Customer", "1") },
    query: {
      endpoint: "query",
      call: (c: QuickBooksClient, realm: string) => c.query(realm, "Customer", "select * from Customer"),
    },
    cdc: {
      endpoint: "cdc",
      call: (c: QuickBooksClient, realm: string) =>
        c.changedSince(realm, ["Customer"], new Date(Date.now() - 3600_000)),
    },
    companyinfo: { endpoint: "read", call: (c: QuickBooksClient, realm: string) => c.companyInfo(realm) },
  } as const;
  const kinds = {
    truncated: /the answer is not JSON \(or cut short\)/,
    html: /the answer is an HTML page/,
    wrongTypes: /unexpected answer at [\w.]*Id: Invalid input: expected string, received number/,
  } as const;

  for (const [name, { endpoint, call }] of Object.entries(calls)) {
    for (const [kind, message] of Object.entries(kinds)) {
      it(`quickbooks - ${name}: a 200 answer ${kind} is QBO_BAD_RESPONSE with QuickBooks' intuit_tid, not retried`, async () => {
        sandbox.setApiBehaviour({ malformedAnswers: [{ kind: kind as keyof typeof kinds, endpoint, percent: 100 }] });
        const client = new QuickBooksClient({
          baseUrl: sandbox.url,
          tokens: { accessToken: async () => tokens.access_token, refresh: async () => tokens.access_token },
          logger,
        });
        const error = await call(client, company.realmId).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(QuickBooksError);
        expect((error as QuickBooksError).code).toBe("QBO_BAD_RESPONSE");
        expect((error as QuickBooksError).message).toMatch(message);
        expect((error as QuickBooksError).details.intuitTid).toEqual(expect.any(String));
        expect(sandbox.apiStats().malformedAnswers).toBe(1);
      });
    }
  }

  for (const [kind, message] of Object.entries(kinds)) {
    it(`quickbooks - token endpoint: a 200 answer ${kind} is QBO_BAD_RESPONSE and quotes no token`, async () => {
      sandbox.setApiBehaviour({
        malformedAnswers: [{ kind: kind as keyof typeof kinds, endpoint: "token", count: 1 }],
      });
      const endpoint = {
        tokenUrl: `${sandbox.url}/oauth2/v1/tokens/bearer`,
        revokeUrl: `${sandbox.url}/v2/oauth2/tokens/revoke`,
        clientId: "client",
        clientSecret: "secret",
      };
      const error = await requestTokens(
        endpoint,
        { grant_type: "refresh_token", refresh_token: tokens.refresh_token },
        Date.now,
      ).catch((e: unknown) => e);
      expect((error as QuickBooksError).code).toBe("QBO_BAD_RESPONSE");
      expect((error as QuickBooksError).message).toMatch(
        kind === "wrongTypes" ? /unexpected answer at access_token/ : message,
      );
      // What a log line of the error (its cause included) would show.
      expect(inspect(error, { depth: 5 })).not.toContain(tokens.refresh_token.slice(0, 12));
    });
  }
});

describe("quickbooks-client requests", () => {
  it("quickbooks - sends minorversion 75 and the bearer token (QBO.md §5)", async () => {
    const seen: { url: string; authorization: string }[] = [];
    const server = createServer((req, res) => {
      seen.push({ url: req.url ?? "", authorization: req.headers.authorization ?? "" });
      res.writeHead(200, { "content-type": "application/json" }).end('{"Customer":{"Id":"1"},"time":"x"}');
    }).listen(0, "127.0.0.1");
    await once(server, "listening");
    const tokens: TokenSource = { accessToken: async () => "at-1", refresh: async () => "at-2" };
    const client = new QuickBooksClient({
      baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      tokens,
      logger,
    });
    await client.read("42", "Customer", "1");
    server.close();
    expect(seen).toEqual([{ url: "/v3/company/42/customer/1?minorversion=75", authorization: "Bearer at-1" }]);
  });
});

describe("quickbooks-client turns", () => {
  /** A limiter that tells when a turn is asked for and given back. */
  class RecordingLimiter extends RealmRateLimiter {
    constructor(private readonly seen: string[]) {
      super({ perMinute: 500, perSecond: 100, concurrent: 1 });
    }
    override async acquire(realmId: string, signal?: AbortSignal): Promise<() => void> {
      this.seen.push("turn asked");
      const release = await super.acquire(realmId, signal);
      return () => {
        this.seen.push("turn given back");
        release();
      };
    }
  }

  it("quickbooks - the access token and the realm's turn are asked for together; a call with no token gives its turn back unused", async () => {
    let requests = 0;
    const server = createServer((_req, res) => {
      requests++;
      res.writeHead(200, { "content-type": "application/json" }).end('{"Customer":{"Id":"1"},"time":"x"}');
    }).listen(0, "127.0.0.1");
    await once(server, "listening");
    try {
      const seen: string[] = [];
      let token: { resolve: (value: string) => void; reject: (err: Error) => void } | undefined;
      const tokens: TokenSource = {
        accessToken: () =>
          new Promise<string>((resolve, reject) => {
            seen.push("token asked");
            token = { resolve, reject };
          }),
        refresh: async () => "at-2",
      };
      const client = new QuickBooksClient({
        baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        tokens,
        logger,
        limiter: new RecordingLimiter(seen),
      });

      const read = client.read("42", "Customer", "1");
      await new Promise((resolve) => setImmediate(resolve));
      // Neither waited for the other: the token is still unread while the turn was asked for.
      expect(seen).toEqual(["token asked", "turn asked"]);
      token?.resolve("at-1");
      expect(await read).toMatchObject({ Id: "1" });
      expect(seen).toEqual(["token asked", "turn asked", "turn given back"]);
      expect(requests).toBe(1);

      seen.length = 0;
      const refused = client.read("42", "Customer", "1");
      await new Promise((resolve) => setImmediate(resolve));
      token?.reject(new QuickBooksError("QBO_UNAUTHORIZED", "no tokens for realm 42"));
      await expect(refused).rejects.toMatchObject({ code: "QBO_UNAUTHORIZED" });
      expect(seen).toEqual(["token asked", "turn asked", "turn given back"]);
      expect(requests).toBe(1);
    } finally {
      server.close();
    }
  });
});
