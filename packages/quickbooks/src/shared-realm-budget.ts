import { setTimeout as sleep } from "node:timers/promises";
import { KnownEntries, type KV, kvKey } from "@qbo-webhooks/messaging";
import type { RateLimits } from "./realm-rate-limiter.js";

/**
 * The per-realm call budget every process shares (KV `qbo-rate-limits`): QuickBooks counts a
 * realm's calls across all our processes, so the processors and the reconciler draw from one
 * schedule. Each call books the next free start time by compare-and-set (a shared GCRA: calls are
 * spaced to fit both the per-second and the per-minute limit), and a 429 seen by anyone pushes
 * every process's next start past the wait QuickBooks asks for.
 */
export class SharedRealmBudget {
  readonly #spacingMs: number;
  readonly #bookings: KnownEntries;

  constructor(kv: KV, limits: Pick<RateLimits, "perSecond" | "perMinute">) {
    this.#spacingMs = Math.max(1000 / limits.perSecond, 60_000 / limits.perMinute);
    this.#bookings = new KnownEntries(kv);
  }

  /** Resolves when a call to `realmId` may start, having booked that start. */
  async take(realmId: string, signal?: AbortSignal): Promise<void> {
    const start = await this.#book(realmId, (nextAt, now) => {
      const at = Math.max(now, nextAt);
      return { at, nextAt: at + this.#spacingMs };
    });
    const wait = start - Date.now();
    if (wait > 0) await sleep(wait, undefined, signal ? { signal } : {});
  }

  /** No call to `realmId` from any process before `until` (ms since the epoch). */
  async holdUntil(realmId: string, until: number): Promise<void> {
    await this.#book(realmId, (nextAt) => ({ at: until, nextAt: Math.max(nextAt, until) }));
  }

  async #book(realmId: string, next: (nextAt: number, now: number) => { at: number; nextAt: number }) {
    // What this process booked last is usually still the latest: booked over without a read.
    let at = 0;
    await this.#bookings.update(kvKey(realmId), (current) => {
      const nextAt = Number(current ?? 0);
      const booked = next(Number.isFinite(nextAt) ? nextAt : 0, Date.now());
      at = booked.at;
      return String(booked.nextAt);
    });
    return at;
  }
}
