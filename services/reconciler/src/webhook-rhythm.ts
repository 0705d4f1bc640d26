import { ChangeEvent, jsonOrUndefined } from "@qbo-webhooks/contracts";
import type { NatsClient } from "@qbo-webhooks/messaging";
import type { Logger } from "@qbo-webhooks/observability";

/** Gaps between webhooks kept per realm to judge its usual rhythm. */
const GAPS_KEPT = 21;

export interface SilenceLimits {
  /** The longest silence allowed, also while a realm's rhythm is unknown. */
  readonly silenceMs: number;
  /** The shortest silence that counts, however busy a realm usually is. */
  readonly silenceMinMs: number;
}

/**
 * Per realm, when this leader last saw a webhook event and the gaps between the last ones: what
 * tells a realm that went quiet (its webhooks may be failing) from one that is always quiet.
 */
export class WebhookRhythm {
  readonly #lastSeen = new Map<string, number>();
  readonly #gaps = new Map<string, number[]>();

  private constructor(
    private readonly now: () => number,
    private readonly subscription: { unsubscribe(): void },
  ) {}

  /**
   * Follows new webhook events as they are published to QBO_EVENTS, with a plain NATS subscription:
   * a work-queue stream admits only its processors' consumers, and this needs no replay.
   */
  static follow(client: NatsClient, now: () => number, logger: Logger): WebhookRhythm {
    const subscription = client.nc.subscribe("qbo.events.>");
    const rhythm = new WebhookRhythm(now, subscription);
    void (async () => {
      for await (const msg of subscription) {
        const event = ChangeEvent.safeParse(jsonOrUndefined(msg.string()));
        if (event.success && event.data.source === "webhook") rhythm.#saw(event.data.realmId);
      }
    })().catch((err: unknown) => logger.warn({ err }, "webhook watch ended"));
    return rhythm;
  }

  stop(): void {
    this.subscription.unsubscribe();
  }

  /** When a webhook event of the realm was last seen (QuickBooks' clock), if since this leadership began. */
  lastSeen(realmId: string): number | undefined {
    return this.#lastSeen.get(realmId);
  }

  /**
   * How long a realm may stay silent before it is caught up: ten of its usual gaps between
   * webhooks, at least `silenceMinMs`, at most `silenceMs` (also while its rhythm is unknown).
   */
  silenceAllowed(realmId: string, limits: SilenceLimits): number {
    const gaps = [...(this.#gaps.get(realmId) ?? [])].sort((a, b) => a - b);
    const usual = gaps[Math.floor(gaps.length / 2)];
    if (gaps.length < 5 || usual === undefined) return limits.silenceMs;
    return Math.min(limits.silenceMs, Math.max(limits.silenceMinMs, 10 * usual));
  }

  #saw(realmId: string): void {
    const now = this.now();
    const previous = this.#lastSeen.get(realmId);
    if (previous !== undefined) {
      // A median of the last gaps: one long pause does not make a busy realm look quiet.
      const gaps = this.#gaps.get(realmId) ?? [];
      gaps.push(Math.max(0, now - previous));
      this.#gaps.set(realmId, gaps.slice(-GAPS_KEPT));
    }
    this.#lastSeen.set(realmId, now);
  }
}
