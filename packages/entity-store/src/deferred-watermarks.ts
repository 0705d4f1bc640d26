import { kvKey } from "@qbo-webhooks/messaging";
import type { EntityStore } from "./entity-store.js";

interface Watermark {
  readonly realmId: string;
  readonly entity: string;
  readonly occurredAt: string;
}

/**
 * Watermarks moved in memory and written together every `intervalMs`, each key once with its latest
 * time, instead of one KV round trip per realm batch. What it trades: a watermark in KV lags the
 * events applied by up to one interval (plus the write), and after a crash it stays that far
 * behind. Behind is the safe side: a CDC from a watermark re-reads changes already applied, and
 * applying them again changes nothing.
 */
export class DeferredWatermarks {
  readonly #pending = new Map<string, Watermark>();
  readonly #timer: NodeJS.Timeout;
  /** Flushes run one after another, so an older write never lands after a newer one of this process. */
  #flushed: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Pick<EntityStore, "advanceWatermark">,
    intervalMs: number,
    private readonly onError: (err: unknown, watermark: Watermark) => void,
  ) {
    this.#timer = setInterval(() => void this.flush(), intervalMs).unref();
  }

  /** Moves the (realm, entity type) watermark forward to `occurredAt` at the next flush; never back. */
  advance(realmId: string, entity: string, occurredAt: string): void {
    const key = kvKey(realmId, entity);
    const pending = this.#pending.get(key);
    if (pending && Date.parse(pending.occurredAt) >= Date.parse(occurredAt)) return;
    this.#pending.set(key, { realmId, entity, occurredAt });
  }

  /**
   * Writes every watermark moved since the last flush, all at once. One that fails is reported and
   * kept for the next flush, unless a later time replaced it meanwhile.
   */
  flush(): Promise<void> {
    this.#flushed = this.#flushed.then(async () => {
      if (this.#pending.size === 0) return;
      const batch = [...this.#pending.values()];
      this.#pending.clear();
      const written = await Promise.allSettled(
        batch.map(({ realmId, entity, occurredAt }) => this.store.advanceWatermark(realmId, entity, occurredAt)),
      );
      for (const [i, result] of written.entries()) {
        const watermark = batch[i];
        if (result.status === "fulfilled" || !watermark) continue;
        this.onError(result.reason, watermark);
        this.advance(watermark.realmId, watermark.entity, watermark.occurredAt);
      }
    });
    return this.#flushed;
  }

  /** Stops the timer and writes what is pending: call before the NATS connection drains. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}
