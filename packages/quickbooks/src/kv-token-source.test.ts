import { randomBytes } from "node:crypto";
import { Buckets } from "@qbo-webhooks/contracts";
import { type KV, NatsClient, openBucket } from "@qbo-webhooks/messaging";
import { NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import { createLogger } from "@qbo-webhooks/observability";
import { Sandbox } from "@qbo-webhooks/sandbox";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvTokenSource } from "./kv-token-source.js";
import type { QuickBooksError } from "./quickbooks-error.js";
import { TokenCipher } from "./token-cipher.js";

const logger = createLogger({ service: "test", level: "silent" });

describe("kv-token-source", () => {
  let nats: NatsServerProcess;
  let client: NatsClient;
  let kv: KV;
  let sandbox: Sandbox;
  const cipher = new TokenCipher(randomBytes(32));

  beforeAll(async () => {
    nats = await NatsServerProcess.start();
    client = await NatsClient.connect({ servers: [nats.url], name: "test", logger });
    kv = await openBucket(client, Buckets.tokens, { replicas: 1 });
    sandbox = await Sandbox.start({ speed: 0 });
    sandbox.registerApp({ appId: "app", clientId: "client", clientSecret: "secret", verifierToken: "v" });
  });
  afterAll(async () => {
    await sandbox?.close();
    await client?.drain();
    await nats?.dispose();
  });

  const source = () =>
    new KvTokenSource(
      kv,
      cipher,
      { tokenUrl: `${sandbox.url}/oauth2/v1/tokens/bearer`, clientId: "client", clientSecret: "secret" },
      { now: () => sandbox.clock.now() },
    );

  async function connected() {
    const company = sandbox.createCompany();
    const tokens = sandbox.connect("app", company.realmId);
    const now = sandbox.clock.now();
    await source().save(company.realmId, {
      accessToken: tokens.access_token,
      refreshToken: tokens.refresh_token,
      accessExpiresAt: now + tokens.expires_in * 1000,
      refreshExpiresAt: now + tokens.x_refresh_token_expires_in * 1000,
    });
    return company.realmId;
  }

  it("tokens - are stored encrypted: the bucket never holds a token in clear", async () => {
    const realmId = await connected();
    const access = await source().accessToken(realmId);
    const stored = (await kv.get(realmId))?.string() ?? "";
    expect(stored).not.toContain(access);
    expect(() => new TokenCipher(randomBytes(32)).decrypt(stored)).toThrow();
  });

  it("tokens - two processes meeting an expired token refresh it once; no rotated token is used twice (QBO.md §7)", async () => {
    const realmId = await connected();
    const [a, b] = [source(), source()];
    for (let round = 0; round < 5; round++) {
      await sandbox.clock.advance(3600 * 1000);
      const tokens = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? a : b).accessToken(realmId)));
      expect(new Set(tokens).size).toBe(1);
    }
    expect(sandbox.apiStats().tokenRequests).toBeGreaterThanOrEqual(5);
    expect(sandbox.apiStats().tokenRequests).toBeLessThanOrEqual(5 + 2);
  });

  it("tokens - a revoked connection fails as QBO_UNAUTHORIZED", async () => {
    const realmId = await connected();
    sandbox.disconnect("app", realmId);
    await sandbox.clock.advance(3600 * 1000);
    const error = await source()
      .accessToken(realmId)
      .catch((err: unknown) => err);
    expect((error as QuickBooksError).code).toBe("QBO_UNAUTHORIZED");
  });

  it("tokens - a realm never connected fails as QBO_UNAUTHORIZED", async () => {
    await expect(source().accessToken("no-such-realm")).rejects.toMatchObject({ code: "QBO_UNAUTHORIZED" });
  });
});
