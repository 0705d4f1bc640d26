import { randomBytes } from "node:crypto";
import type { KV } from "@qbo-webhooks/messaging";
import { countedReads } from "@qbo-webhooks/messaging/testing";
import type { Sandbox } from "@qbo-webhooks/sandbox";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvTokenSource } from "./kv-token-source.js";
import { issuedTokensOf } from "./oauth.js";
import type { QuickBooksError } from "./quickbooks-error.js";
import { startTokenBucket, type TokenBucket } from "./testing/token-bucket.js";
import { TokenCipher } from "./token-cipher.js";

describe("kv-token-source", () => {
  let bucket: TokenBucket;
  let kv: KV;
  let sandbox: Sandbox;
  const cipher = new TokenCipher(randomBytes(32));

  beforeAll(async () => {
    bucket = await startTokenBucket();
    ({ kv, sandbox } = bucket);
  });
  afterAll(async () => {
    await bucket?.close();
  });

  const source = (bucketKv: KV = kv) =>
    new KvTokenSource(
      bucketKv,
      cipher,
      {
        tokenUrl: `${sandbox.url}/oauth2/v1/tokens/bearer`,
        revokeUrl: `${sandbox.url}/v2/oauth2/tokens/revoke`,
        clientId: "client",
        clientSecret: "secret",
      },
      { now: () => sandbox.clock.now() },
    );

  async function connected() {
    const company = sandbox.createCompany();
    await source().save(company.realmId, issuedTokensOf(sandbox.connect("app", company.realmId), sandbox.clock.now()));
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

  it("tokens - a process reads a realm's tokens once and uses them until due; a refused one is replaced by what KV holds", async () => {
    const realmId = await connected();
    const counted = countedReads(kv);
    const mine = source(counted.kv);
    const first = await mine.accessToken(realmId);
    expect(await mine.accessToken(realmId)).toBe(first);
    expect(counted.reads()).toBe(1);

    // Another process refreshes: until QuickBooks refuses ours, ours stays in use (it still works there).
    const theirs = await source().refresh(realmId, first);
    expect(theirs).not.toBe(first);
    expect(await mine.accessToken(realmId)).toBe(first);
    expect(counted.reads()).toBe(1);
    const tokenRequests = sandbox.apiStats().tokenRequests;
    expect(await mine.refresh(realmId, first)).toBe(theirs);
    expect(sandbox.apiStats().tokenRequests).toBe(tokenRequests);
    expect(await mine.accessToken(realmId)).toBe(theirs);
    const reads = counted.reads();

    // Due for refresh: read again and refreshed, never used past its time.
    await sandbox.clock.advance(3600 * 1000);
    const renewed = await mine.accessToken(realmId);
    expect(renewed).not.toBe(theirs);
    expect(counted.reads()).toBeGreaterThan(reads);
    expect(sandbox.apiStats().tokenRequests).toBe(tokenRequests + 1);
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
