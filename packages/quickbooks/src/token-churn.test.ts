import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import type { KV } from "@qbo-webhooks/messaging";
import type { NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import type { Sandbox } from "@qbo-webhooks/sandbox";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { KvTokenSource, StoredTokens } from "./kv-token-source.js";
import { issuedTokensOf } from "./oauth.js";
import { startTokenBucket, type TokenBucket } from "./testing/token-bucket.js";
import { TokenCipher } from "./token-cipher.js";

const WORKER = fileURLToPath(new URL("../dist/testing/token-churn-worker.js", import.meta.url));
const REFRESHES = 1000;
const REALMS = 20;
/** Refresh loops per process. */
const LOOPS = 6;

/** One line a worker prints: what a refresh or read came to. */
const Outcome = z.object({
  name: z.string(),
  realmId: z.string().optional(),
  ok: z.string().optional(),
  error: z.string().optional(),
});
type Outcome = z.infer<typeof Outcome>;

/**
 * Two token keepers (as in two reconcilers) and a reader (as in a processor) refresh the same 20
 * realms, each a process, killed with -9 (one every 50 to 100 refreshes) and started again, against a token endpoint
 * that is slow, answers 503, or refuses our client (`invalid_client`).
 */
describe("token churn: three processes, random kills, a flaky token endpoint", () => {
  let bucket: TokenBucket;
  let nats: NatsServerProcess;
  let kv: KV;
  let sandbox: Sandbox;
  const key = randomBytes(32);
  const cipher = new TokenCipher(key);
  const children = new Set<ChildProcess>();
  const outcomes: Outcome[] = [];

  beforeAll(async () => {
    bucket = await startTokenBucket();
    ({ nats, kv, sandbox } = bucket);
  });
  afterAll(async () => {
    for (const child of children) child.kill("SIGKILL");
    await bucket?.close();
  });

  it(`tokens - ${REFRESHES} refreshes: no rotated refresh token lost or overwritten by an older one; only invalid_grant disconnects`, {
    timeout: 330_000,
  }, async () => {
    const killed = new Map<string, number>();
    const realms = Array.from({ length: REALMS }, () => sandbox.createCompany().realmId);
    const source = new KvTokenSource(kv, cipher, {
      tokenUrl: "unused",
      revokeUrl: "unused",
      clientId: "client",
      clientSecret: "secret",
    });
    /** What an operator does for a disconnected company: connect it again. */
    const connect = async (realmId: string) => {
      await source.save(realmId, issuedTokensOf(sandbox.connect("app", realmId), Date.now()));
    };
    for (const realmId of realms) await connect(realmId);
    const stored = async (realmId: string) =>
      StoredTokens.parse(JSON.parse(cipher.decrypt((await kv.get(realmId))?.string() ?? "")));
    /**
     * Whether a realm's newest refresh token never reached anyone who could keep it: issued into a
     * connection its client had closed (it timed out, or died), or to a process killed before it
     * could write it down. No client can save such a token; any other loss is ours.
     */
    const neverReachedAKeeper = (realmId: string) => {
      const live = sandbox.oauth.liveRefreshToken("app", realmId);
      const issued = sandbox.tokenLog().find((r) => r.refreshToken !== undefined && r.refreshToken === live);
      return issued !== undefined && (issued.clientGone || killed.has(issued.userAgent));
    };
    const lost: { realmId: string; explained: boolean }[] = [];
    sandbox.setApiBehaviour({
      tokenFaults: [
        { kind: "slow", delayMs: 300, percent: 15 },
        { kind: "serverError", percent: 10 },
        { kind: "invalidClient", percent: 5 },
      ],
    });

    const incarnations = new Map<string, number>();
    const start = (slot: string, role: "keeper" | "reader") => {
      const name = `${slot}.${(incarnations.get(slot) ?? 0) + 1}`;
      incarnations.set(slot, (incarnations.get(slot) ?? 0) + 1);
      const child = spawn(process.execPath, [WORKER], {
        env: {
          PATH: process.env.PATH ?? "",
          NATS_URL: nats.url,
          SANDBOX_URL: sandbox.url,
          TOKEN_KEY: key.toString("base64"),
          REALMS: realms.join(","),
          ROLE: role,
          NAME: name,
          LOOPS: String(LOOPS),
        },
        stdio: ["ignore", "pipe", "inherit"],
      });
      children.add(child);
      child.once("exit", () => children.delete(child));
      if (child.stdout)
        createInterface({ input: child.stdout }).on("line", (line) => outcomes.push(Outcome.parse(JSON.parse(line))));
      return { name, child };
    };
    const slots = [
      { slot: "keeper-a", role: "keeper" as const },
      { slot: "keeper-b", role: "keeper" as const },
      { slot: "reader", role: "reader" as const },
    ];
    const running = new Map(slots.map(({ slot, role }) => [slot, start(slot, role)]));
    const refreshes = () =>
      sandbox.tokenLog().filter((r) => r.grantType === "refresh_token" && r.status === 200).length;

    // Kills come with progress, every 50 to 100 refreshes, so a slow machine meets as many as a fast one.
    const deadline = Date.now() + 300_000;
    const killGap = () => refreshes() + 50 + Math.floor(Math.random() * 50);
    let nextKill = killGap();
    while (refreshes() < REFRESHES && Date.now() < deadline) {
      await sleep(250);
      // Access tokens expire every so often, so the reader meets 401s and refreshes.
      await sandbox.clock.advance(3600_000);
      for (const realmId of realms) {
        if ((await stored(realmId)).refusedAt === undefined) continue;
        lost.push({ realmId, explained: neverReachedAKeeper(realmId) });
        await connect(realmId);
      }
      if (refreshes() >= nextKill) {
        const { slot, role } = slots[Math.floor(Math.random() * slots.length)] ?? { slot: "reader", role: "reader" };
        const victim = running.get(slot);
        if (!victim) throw new Error(`no process in slot ${slot}`);
        victim.child.kill("SIGKILL");
        killed.set(victim.name, Date.now());
        await once(victim.child, "exit");
        running.set(slot, start(slot, role));
        nextKill = killGap();
      }
    }
    for (const { child } of running.values()) {
      child.kill("SIGTERM");
      await once(child, "exit");
    }
    const tally = new Map<string, number>();
    for (const o of outcomes) tally.set(o.error ?? o.ok ?? "other", (tally.get(o.error ?? o.ok ?? "other") ?? 0) + 1);
    process.stdout.write(
      `${JSON.stringify({ refreshes: refreshes(), kills: killed.size, lost: lost.length, outcomes: Object.fromEntries(tally) })}\n`,
    );

    // Every fault was met, and reported as what it is.
    const errors = new Set(outcomes.flatMap((o) => (o.error ? [o.error] : [])));
    expect(errors).toContain("QBO_SERVER");
    expect(errors).toContain("QBO_CLIENT_REFUSED");
    expect(outcomes.some((o) => o.ok === "read")).toBe(true);

    // Every realm QuickBooks refused was refused because a killed process took its newest token
    // with it; in the end, every other realm holds the one refresh token QuickBooks still accepts.
    expect(lost.filter((l) => !l.explained)).toEqual([]);
    for (const realmId of realms) {
      const tokens = await stored(realmId);
      if (tokens.refreshToken === sandbox.oauth.liveRefreshToken("app", realmId)) continue;
      expect(neverReachedAKeeper(realmId), `realm ${realmId}: its newest refresh token was lost`).toBe(true);
    }
    // Each kill costs at most the refreshes its process had in flight.
    expect(lost.length).toBeLessThanOrEqual(killed.size * LOOPS);
    expect(refreshes()).toBeGreaterThanOrEqual(REFRESHES);
    expect(killed.size).toBeGreaterThanOrEqual(10);
  });
});
