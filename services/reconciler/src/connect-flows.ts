import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { ENTITY_NAMES } from "@qbo-webhooks/contracts";
import { isRevisionConflict, type KV } from "@qbo-webhooks/messaging";
import { z } from "zod";

/** A consent must come back within this long (the bucket also forgets flows after it). */
export const FLOW_TTL_MS = 10 * 60_000;

/** A flow as kept in KV `qbo-connect-flows`, under its nonce. */
const StoredFlow = z.object({
  /** SHA-256 of the secret in the browser's cookie: only that browser can finish the flow. */
  browserHash: z.string(),
  expiresAt: z.number(),
  entities: z.array(z.enum(ENTITY_NAMES)),
  /** Started as a reconnect: may replace the tokens of a company already connected. */
  reconnect: z.boolean(),
});
export type ConnectFlow = z.infer<typeof StoredFlow>;

/** Why a callback's `state` was not accepted; each one saves nothing. */
export type FlowRefusal = "forged" | "unknown" | "expired" | "other_browser";

export const FLOW_REFUSALS: Record<FlowRefusal, string> = {
  forged: "the state was not issued by this service",
  unknown: "the state is unknown or was used already",
  expired: "the consent took longer than 10 minutes",
  other_browser: "the consent came back to a different browser than the one that started it",
};

/**
 * OAuth connect flows (QBO.md §7), shared by every reconciler replica through KV: `start` gives the
 * `state` for Intuit and a secret for the starting browser's cookie; `finish` accepts a state once,
 * within 10 minutes, from that browser only. The state is also signed, so a forged one is refused
 * without a read.
 */
export class ConnectFlows {
  constructor(
    private readonly kv: KV,
    private readonly stateKey: Uint8Array,
    private readonly now: () => number = Date.now,
  ) {}

  async start(flow: Omit<ConnectFlow, "browserHash" | "expiresAt">): Promise<{ state: string; browserSecret: string }> {
    const nonce = randomBytes(16).toString("base64url");
    const browserSecret = randomBytes(32).toString("base64url");
    const stored: ConnectFlow = { ...flow, browserHash: sha256(browserSecret), expiresAt: this.now() + FLOW_TTL_MS };
    await this.kv.create(nonce, JSON.stringify(stored));
    return { state: `${nonce}.${this.#mac(nonce)}`, browserSecret };
  }

  /** Takes the flow `state` names, once; the browser must present the secret `start` gave it. */
  async finish(
    state: string,
    browserSecret: string | undefined,
  ): Promise<{ ok: true; flow: ConnectFlow } | { ok: false; refusal: FlowRefusal }> {
    const [nonce = "", mac = ""] = state.split(".");
    const expected = Buffer.from(this.#mac(nonce), "base64url");
    const given = Buffer.from(mac, "base64url");
    if (nonce === "" || given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return { ok: false, refusal: "forged" };
    }
    const entry = await this.kv.get(nonce);
    if (entry?.operation !== "PUT") return { ok: false, refusal: "unknown" };
    const flow = StoredFlow.parse(entry.json());
    if (flow.expiresAt <= this.now()) return { ok: false, refusal: "expired" };
    const presented = Buffer.from(sha256(browserSecret ?? ""), "base64url");
    const wanted = Buffer.from(flow.browserHash, "base64url");
    if (browserSecret === undefined || !timingSafeEqual(presented, wanted)) {
      return { ok: false, refusal: "other_browser" };
    }
    try {
      // Compare-and-set on the revision read: of two callbacks with the same state, one wins.
      await this.kv.delete(nonce, { previousSeq: entry.revision });
    } catch (err) {
      if (isRevisionConflict(err)) return { ok: false, refusal: "unknown" };
      throw err;
    }
    return { ok: true, flow };
  }

  #mac(nonce: string): string {
    return createHmac("sha256", this.stateKey).update(nonce).digest("base64url");
  }
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("base64url");
}
