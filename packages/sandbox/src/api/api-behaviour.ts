import { z } from "zod";
import { frequency, hasOneFrequency, ONE_FREQUENCY } from "../fault-draws.js";
import { MalformedAnswer } from "./malformed-answers.js";

/**
 * How the REST API behaves: QuickBooks' limits and odd habits (on by default where QuickBooks has
 * them, QBO.md §6, §8) and faults a test can inject.
 */
export const ApiBehaviour = z.object({
  /** Per realm, all apps: 500 requests a minute (QBO.md §6). */
  requestsPerMinute: z.number().int().min(1).default(500),
  /** Per realm and app: 10 requests a second (QBO.md §6). */
  requestsPerSecond: z.number().int().min(1).default(10),
  /** Per realm and app: 10 requests at once (the older policy, QBO.md §6). */
  concurrentRequests: z.number().int().min(1).default(10),
  /** 429, or 403 as the 2016 sandbox answered (QBO.md §6). */
  throttleStatus: z.union([z.literal(429), z.literal(403)]).default(429),
  /** Answer 400/500 faults in the lower-case `{"fault":{"error":..}}` variant (QBO.md §8). */
  lowerCaseFaults: z.boolean().default(false),
  /** Real milliseconds added to every API answer. */
  latencyMs: z.number().int().min(0).default(0),
  /** Injected server errors: 500 as a JSON fault, 502/503 as nginx HTML pages. */
  serverErrors: z
    .array(
      z
        .object({ status: z.union([z.literal(500), z.literal(502), z.literal(503)]), ...frequency })
        .refine(hasOneFrequency, ONE_FREQUENCY),
    )
    .default([]),
  /**
   * Injected token endpoint faults, drawn before the grant is used: `slow` answers after `delayMs`,
   * `serverError` is a 503 page, `invalidClient` a 401 `invalid_client` (as after a client secret
   * was rotated), `invalidGrant` a 400 `invalid_grant` (as for a refresh token QuickBooks no longer honours).
   */
  tokenFaults: z
    .array(
      z
        .object({
          kind: z.enum(["slow", "serverError", "invalidClient", "invalidGrant"]),
          delayMs: z.number().int().min(0).optional(),
          ...frequency,
        })
        .refine(hasOneFrequency, ONE_FREQUENCY)
        .refine((fault) => fault.kind !== "slow" || fault.delayMs !== undefined, { message: "slow needs delayMs" }),
    )
    .default([]),
  /** Injected 200 answers that are cut short, wrongly typed or HTML. */
  malformedAnswers: z.array(MalformedAnswer).default([]),
});
export type ApiBehaviour = z.infer<typeof ApiBehaviour>;
export type ApiBehaviourInput = z.input<typeof ApiBehaviour>;
export type TokenFault = ApiBehaviour["tokenFaults"][number];

/** Sliding-window counters, in real time: QuickBooks' limits are about the real request rate. */
export class RateLimiter {
  readonly #windows = new Map<string, number[]>();
  readonly #inFlight = new Map<string, number>();

  /** Whether one more request fits; counts it when it does. */
  tryAcquire(realmId: string, appId: string, behaviour: ApiBehaviour): boolean {
    const now = performance.now();
    const minute = this.#recent(`m:${realmId}`, now, 60_000);
    const second = this.#recent(`s:${realmId}:${appId}`, now, 1000);
    const concurrent = this.#inFlight.get(`${realmId}:${appId}`) ?? 0;
    if (
      minute.length >= behaviour.requestsPerMinute ||
      second.length >= behaviour.requestsPerSecond ||
      concurrent >= behaviour.concurrentRequests
    ) {
      return false;
    }
    minute.push(now);
    second.push(now);
    this.#inFlight.set(`${realmId}:${appId}`, concurrent + 1);
    return true;
  }

  release(realmId: string, appId: string): void {
    const key = `${realmId}:${appId}`;
    this.#inFlight.set(key, Math.max(0, (this.#inFlight.get(key) ?? 1) - 1));
  }

  #recent(key: string, now: number, windowMs: number): number[] {
    const kept = (this.#windows.get(key) ?? []).filter((t) => now - t < windowMs);
    this.#windows.set(key, kept);
    return kept;
  }
}
