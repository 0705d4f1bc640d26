import { setTimeout as sleep } from "node:timers/promises";
import { isRevisionConflict, type KV, kvKey } from "@qbo-webhooks/messaging";
import type { RateLimits } from "./realm-rate-limiter.js";

/** A realm's next free start, as of a revision of its key (none: the key does not exist). */
interface Booking {
  readonly revision?: number;
  readonly nextAt: number;
}

/** Realms whose last booking a process keeps (a map entry each). */
const KNOWN_REALMS = 10_000;

/**
 * The per-realm call budget every process shares (KV `qbo-rate-limits`): QuickBooks counts a
 * realm's calls across all our processes, so the processors and the reconciler draw from one
 * schedule. Each call books the next free start time by compare-and-set (a shared GCRA: calls are
 * spaced to fit both the per-second and the per-minute limit), and a 429 seen by anyone pushes
 * every process's next start past the wait QuickBooks asks for.
 */
export class SharedRealmBudget {
  readonly #spacingMs: number;
  /** Per realm's key, the booking this process wrote last and the revision it got. */
  readonly #known = new Map<string, Booking>();

  constructor(
    private readonly kv: KV,
    limits: Pick<RateLimits, "perSecond" | "perMinute">,
  ) {
    this.#spacingMs = Math.max(1000 / limits.perSecond, 60_000 / limits.perMinute);
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
    const key = kvKey(realmId);
    for (;;) {
      // What this process booked last is usually still the latest: written over at once, without a
      // read first. Someone else's booking since then makes the write conflict; then it reads.
      const known = this.#known.get(key) ?? (await this.#read(key));
      const booked = next(known.nextAt, Date.now());
      try {
        const revision =
          known.revision === undefined
            ? await this.kv.create(key, String(booked.nextAt))
            : await this.kv.update(key, String(booked.nextAt), known.revision);
        this.#remember(key, { revision, nextAt: booked.nextAt });
        return booked.at;
      } catch (err) {
        this.#known.delete(key);
        if (!isRevisionConflict(err)) throw err; // another process booked first: book again
      }
    }
  }

  async #read(key: string): Promise<Booking> {
    const entry = await this.kv.get(key);
    if (!entry) return { nextAt: 0 };
    const nextAt = entry.operation === "PUT" ? Number(entry.string()) : 0;
    return { revision: entry.revision, nextAt: Number.isFinite(nextAt) ? nextAt : 0 };
  }

  /** Keeps at most `KNOWN_REALMS` bookings, the latest written: a realm long quiet is read again. */
  #remember(key: string, booking: Booking): void {
    this.#known.delete(key);
    this.#known.set(key, booking);
    if (this.#known.size > KNOWN_REALMS) this.#known.delete(this.#known.keys().next().value ?? key);
  }
}
