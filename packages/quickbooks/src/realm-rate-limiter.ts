import { setTimeout as sleep } from "node:timers/promises";
import type { SharedRealmBudget } from "./shared-realm-budget.js";

/**
 * QuickBooks' per-realm limits (QBO.md §6): 500 requests a minute per realm, 10 a second and 10 at
 * once per realm and app. The defaults keep a margin below them, since our windows and Intuit's
 * do not start at the same instant.
 */
export interface RateLimits {
  readonly perMinute: number;
  readonly perSecond: number;
  readonly concurrent: number;
}

export const DEFAULT_RATE_LIMITS: RateLimits = { perMinute: 450, perSecond: 8, concurrent: 8 };

interface RealmState {
  minute: number[];
  lastStart: number;
  /** Calls a second allowed now: halved after each throttle, regained one a minute. */
  perSecond: number;
  throttledAt: number;
  inFlight: number;
  blockedUntil: number;
  /** Callers take turns per realm, so a waiting caller is not overtaken. */
  turn: Promise<void>;
  released: { promise: Promise<void>; resolve: () => void };
}

/**
 * Waits before each call until it fits the realm's limits, in real time, and holds a realm back
 * after QuickBooks throttled it. One instance per process; realms are independent.
 */
export class RealmRateLimiter {
  readonly #realms = new Map<string, RealmState>();

  /** `shared`: the budget other processes draw from too; without it the limits hold for this process alone. */
  constructor(
    private readonly limits: RateLimits = DEFAULT_RATE_LIMITS,
    private readonly shared?: SharedRealmBudget,
  ) {}

  /** Resolves with a release function once a call to `realmId` may start. */
  async acquire(realmId: string, signal?: AbortSignal): Promise<() => void> {
    const state = this.#state(realmId);
    const mine = state.turn.then(() => this.#waitForSlot(state, signal));
    state.turn = mine.catch(() => undefined);
    await mine;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      state.inFlight--;
      const { resolve } = state.released;
      state.released = deferred();
      resolve();
    };
    try {
      await this.shared?.take(realmId, signal);
    } catch (err) {
      release();
      throw err;
    }
    return release;
  }

  /**
   * After a 429: no call to the realm until `ms` from now (QuickBooks asks for 60 s, QBO.md §6),
   * and half the rate after that, since the realm's real limit is lower than we assumed (other
   * apps share it). The rate grows back by one call a second per quiet minute.
   */
  holdBack(realmId: string, ms: number): void {
    const state = this.#state(realmId);
    const now = performance.now();
    state.blockedUntil = Math.max(state.blockedUntil, now + ms);
    state.perSecond = Math.max(1, Math.floor(this.#rate(state, now) / 2));
    state.throttledAt = now;
    this.shared?.holdUntil(realmId, Date.now() + ms).catch(() => undefined); // best effort: our own hold stands
  }

  #rate(state: RealmState, now: number): number {
    const regained = Math.floor((now - state.throttledAt) / 60_000);
    return Math.min(this.limits.perSecond, state.perSecond + regained);
  }

  async #waitForSlot(state: RealmState, signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const now = performance.now();
      state.minute = state.minute.filter((t) => now - t < 60_000);
      // Calls are spaced evenly rather than sent in bursts of `perSecond`: QuickBooks' window sees
      // our calls shifted by network delay, so a burst at the edge of ours can land inside one of its.
      let wait = Math.max(0, state.blockedUntil - now, state.lastStart + 1000 / this.#rate(state, now) - now);
      const oldestMinute = state.minute[0];
      if (oldestMinute !== undefined && state.minute.length >= this.limits.perMinute) {
        wait = Math.max(wait, oldestMinute + 60_000 - now);
      }
      if (wait > 0) {
        await sleep(wait, undefined, signal ? { signal } : {});
      } else if (state.inFlight >= this.limits.concurrent) {
        await state.released.promise;
      } else {
        state.minute.push(now);
        state.lastStart = now;
        state.inFlight++;
        return;
      }
    }
  }

  #state(realmId: string): RealmState {
    let state = this.#realms.get(realmId);
    if (!state) {
      state = {
        minute: [],
        lastStart: Number.NEGATIVE_INFINITY,
        perSecond: this.limits.perSecond,
        throttledAt: Number.NEGATIVE_INFINITY,
        inFlight: 0,
        blockedUntil: 0,
        turn: Promise.resolve(),
        released: deferred(),
      };
      this.#realms.set(realmId, state);
    }
    return state;
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
