import { ChangeEvent, type RealmRecord, Streams } from "@qbo-webhooks/contracts";
import type { RealmFollower, RealmRegistry } from "@qbo-webhooks/entity-store";
import { backoffMs, type NatsClient } from "@qbo-webhooks/messaging";
import type { Logger } from "@qbo-webhooks/observability";
import { type KvTokenSource, QuickBooksError } from "@qbo-webhooks/quickbooks";
import pLimit from "p-limit";
import { type CdcDeps, type CdcKind, nextDailyCdc, runRealmCdc } from "./realm-cdc.js";
import type { ReconcilerMetrics } from "./reconciler-metrics.js";

/** How long a finished run's result may take to reach the followed records before it is given up on. */
const RESULT_WAIT_MS = 30_000;
/** Gaps between webhooks kept per realm to judge its usual rhythm. */
const GAPS_KEPT = 21;

export interface LoopSettings {
  readonly intervalMs: number;
  readonly tokenRefreshAheadMs: number;
  readonly silenceMs: number;
  /** The shortest silence that counts, however busy a realm usually is. */
  readonly silenceMinMs: number;
  readonly dailyCdc: boolean;
  readonly cdcConcurrency: number;
}

export interface LoopDeps extends CdcDeps {
  readonly tokens: KvTokenSource;
  readonly registry: RealmRegistry;
  readonly metrics: ReconcilerMetrics;
  readonly logger: Logger;
  readonly client: NatsClient;
}

/**
 * What the leader does, every `intervalMs` while it leads: refreshes tokens ahead of expiry,
 * marks realms whose refresh QuickBooks refused as disconnected, runs CDC per realm when one is
 * due (at the start of leadership, on request or reconnect, after a realm's webhooks went silent,
 * and once a day), and publishes the pipeline's backlog and dead letters as metrics.
 */
export class ControlLoops {
  readonly #running = new Set<string>();
  /** Realms caught up since this leadership began: every realm gets one catch-up at its start. */
  readonly #caughtUp = new Set<string>();
  readonly #retryAt = new Map<string, { at: number; failures: number }>();
  /**
   * Per realm, the last run here: when it started (QuickBooks' clock) and ended (monotonic). Until
   * the record shows that run's result (`lastCdcAt`), the record held is older than the run and
   * must not start it again; a result that never arrives (its write failed) stops counting after
   * `RESULT_WAIT_MS`.
   */
  readonly #lastRun = new Map<string, { startedAt: number; endedAt: number | undefined }>();
  readonly #lastWebhook = new Map<string, number>();
  /** Per realm, the last gaps between webhook events as this leader saw them; their median is the usual gap. */
  readonly #gaps = new Map<string, number[]>();
  readonly #limit: ReturnType<typeof pLimit>;
  #timer: NodeJS.Timeout | undefined;
  #tick: Promise<void> = Promise.resolve();
  #watcher: { stop(): void } | undefined;
  #realms: RealmFollower | undefined;

  constructor(
    private readonly deps: LoopDeps,
    private readonly settings: LoopSettings,
  ) {
    this.#limit = pLimit(settings.cdcConcurrency);
  }

  /** Runs until `signal` aborts (leadership ended). */
  async start(signal: AbortSignal): Promise<void> {
    this.#caughtUp.clear();
    this.#realms = await this.deps.registry.follow();
    this.#watcher = await this.#watchWebhooks();
    const loop = () => {
      if (signal.aborted) return;
      this.#tick = this.#once().catch((err: unknown) => this.deps.logger.error({ err }, "control loop failed"));
      void this.#tick.then(() => {
        if (!signal.aborted) this.#timer = setTimeout(loop, this.settings.intervalMs);
      });
    };
    signal.addEventListener("abort", () => this.#stopLoop(), { once: true });
    loop();
  }

  /** Waits for the loop and the CDC runs under way to finish. */
  async stop(): Promise<void> {
    this.#stopLoop();
    await this.#tick;
    await this.#limit(() => undefined); // queued after every run under way (FIFO)
  }

  #stopLoop(): void {
    clearTimeout(this.#timer);
    this.#watcher?.stop();
    this.#watcher = undefined;
    this.#realms?.stop();
    this.#realms = undefined;
  }

  async #once(): Promise<void> {
    const realms = this.#realms?.list() ?? [];
    const connected = realms.filter(({ record }) => record.status === "connected");
    this.deps.metrics.realms.set({ status: "connected" }, connected.length);
    this.deps.metrics.realms.set({ status: "disconnected" }, realms.length - connected.length);
    for (const { record: realm } of connected) {
      if (!this.deps.stillLeader()) return;
      if (!(await this.#keepTokensAlive(realm))) continue;
      await this.#recordWebhooks(realm);
      if (this.#awaitingResult(realm)) continue;
      const kind = this.#cdcDue(realm);
      if (kind) this.#runCdc(realm, kind);
    }
    await this.#publishBacklog(connected.map(({ record }) => record));
  }

  /** Refreshes ahead of expiry; false when QuickBooks refused and the realm is now disconnected. */
  async #keepTokensAlive(realm: RealmRecord): Promise<boolean> {
    // The record keeps the expiry it last saw; tokens only ever get later, so no need to read them yet.
    const expiresAt = realm.accessTokenExpiresAt;
    if (expiresAt !== undefined && expiresAt - this.settings.tokenRefreshAheadMs > this.deps.now()) return true;
    try {
      const { tokens, refreshed } = await this.deps.tokens.refreshIfExpiring(
        realm.realmId,
        this.settings.tokenRefreshAheadMs,
      );
      if (refreshed) this.deps.metrics.tokenRefreshes.inc({ result: "refreshed" });
      if (realm.accessTokenExpiresAt !== tokens.accessExpiresAt) {
        await this.deps.registry.update(
          realm.realmId,
          (r) =>
            r && { ...r, accessTokenExpiresAt: tokens.accessExpiresAt, refreshTokenExpiresAt: tokens.refreshExpiresAt },
        );
      }
      return true;
    } catch (err) {
      if (err instanceof QuickBooksError && err.code === "QBO_UNAUTHORIZED") {
        this.deps.metrics.tokenRefreshes.inc({ result: "refused" });
        this.deps.logger.error(
          { realmId: realm.realmId, err },
          "QuickBooks refused the realm's tokens; marked disconnected",
        );
        await this.deps.registry.update(
          realm.realmId,
          (r) =>
            r && {
              ...r,
              status: "disconnected",
              statusReason: `${err.message} (connect the company again: /connect)`,
            },
        );
        return false;
      }
      this.deps.metrics.tokenRefreshes.inc({ result: "failed" });
      this.deps.logger.warn({ realmId: realm.realmId, err }, "token refresh failed; will retry");
      return true;
    }
  }

  #cdcDue(realm: RealmRecord): CdcKind | undefined {
    const now = this.deps.now();
    if (this.#running.has(realm.realmId)) return undefined;
    const retry = this.#retryAt.get(realm.realmId);
    if (retry && performance.now() < retry.at) return undefined;
    if (realm.cdcRequestedAt !== undefined) return "requested";
    if (!this.#caughtUp.has(realm.realmId)) return "catch-up";
    const heardOf = Math.max(realm.lastWebhookAt ?? 0, realm.lastCdcAt ?? 0, realm.connectedAt);
    if (now - heardOf > this.#silenceAllowed(realm.realmId)) return "catch-up";
    if (this.settings.dailyCdc && now >= nextDailyCdc(realm)) return "daily";
    return undefined;
  }

  /**
   * How long a realm may stay silent before it is caught up: ten of its usual gaps between
   * webhooks, at least `silenceMinMs`, at most `silenceMs` (also while its rhythm is unknown).
   */
  #silenceAllowed(realmId: string): number {
    const gaps = [...(this.#gaps.get(realmId) ?? [])].sort((a, b) => a - b);
    const usual = gaps[Math.floor(gaps.length / 2)];
    if (gaps.length < 5 || usual === undefined) return this.settings.silenceMs;
    return Math.min(this.settings.silenceMs, Math.max(this.settings.silenceMinMs, 10 * usual));
  }

  /** Whether the realm's record does not show its last run's result yet. */
  #awaitingResult(realm: RealmRecord): boolean {
    const last = this.#lastRun.get(realm.realmId);
    if (!last || (realm.lastCdcAt ?? Number.NEGATIVE_INFINITY) >= last.startedAt) return false;
    return last.endedAt === undefined || performance.now() - last.endedAt < RESULT_WAIT_MS;
  }

  #runCdc(realm: RealmRecord, kind: CdcKind): void {
    this.#running.add(realm.realmId);
    const run: { startedAt: number; endedAt: number | undefined } = { startedAt: this.deps.now(), endedAt: undefined };
    this.#lastRun.set(realm.realmId, run);
    void this.#limit(async () => {
      try {
        if (!this.deps.stillLeader()) return;
        await runRealmCdc(this.deps, realm, kind);
        this.deps.metrics.cdcRuns.inc({ result: "succeeded" });
        this.#caughtUp.add(realm.realmId);
        this.#retryAt.delete(realm.realmId);
      } catch (err) {
        this.deps.metrics.cdcRuns.inc({ result: "failed" });
        const failures = (this.#retryAt.get(realm.realmId)?.failures ?? 0) + 1;
        this.#retryAt.set(realm.realmId, {
          failures,
          at: performance.now() + backoffMs(failures, this.settings.intervalMs, 30 * 60_000),
        });
        this.deps.logger.error({ err, realmId: realm.realmId, kind, failures }, "CDC run failed; will retry");
        await this.deps.registry
          .update(realm.realmId, (r) => r && { ...r, lastCdcAt: this.deps.now(), lastCdcResult: "failed" })
          .catch(() => undefined);
      } finally {
        run.endedAt = performance.now();
        this.#running.delete(realm.realmId);
      }
    });
  }

  /** Keeps each realm's last webhook time in its record, from what this leader saw arrive. */
  async #recordWebhooks(realm: RealmRecord): Promise<void> {
    const seen = this.#lastWebhook.get(realm.realmId);
    if (seen === undefined || seen <= (realm.lastWebhookAt ?? 0)) return;
    await this.deps.registry.update(
      realm.realmId,
      (r) => r && { ...r, lastWebhookAt: Math.max(seen, r.lastWebhookAt ?? 0) },
    );
  }

  /**
   * Follows new webhook events as they are published to QBO_EVENTS, with a plain NATS subscription:
   * a work-queue stream admits only its processors' consumers, and this needs no replay.
   */
  async #watchWebhooks(): Promise<{ stop(): void }> {
    const subscription = this.deps.client.nc.subscribe("qbo.events.>");
    void (async () => {
      for await (const msg of subscription) {
        const event = ChangeEvent.safeParse(parseJson(msg.string()));
        if (!event.success || event.data.source !== "webhook") continue;
        const { realmId } = event.data;
        const now = this.deps.now();
        const previous = this.#lastWebhook.get(realmId);
        if (previous !== undefined) {
          // A median of the last gaps: one long pause does not make a busy realm look quiet.
          const gaps = this.#gaps.get(realmId) ?? [];
          gaps.push(Math.max(0, now - previous));
          this.#gaps.set(realmId, gaps.slice(-GAPS_KEPT));
        }
        this.#lastWebhook.set(realmId, now);
      }
    })().catch((err: unknown) => this.deps.logger.warn({ err }, "webhook watch ended"));
    return { stop: () => subscription.unsubscribe() };
  }

  async #publishBacklog(connected: readonly RealmRecord[]): Promise<void> {
    const { jsm } = this.deps.client;
    for (const stream of [Streams.webhooks, Streams.events, Streams.changes]) {
      for await (const info of jsm.consumers.list(stream.name)) {
        this.deps.metrics.consumerPending.set(
          { stream: stream.name, consumer: info.name },
          info.num_pending + info.num_ack_pending,
        );
      }
    }
    for (const spec of Object.values(Streams)) {
      const { config, state } = await jsm.streams.info(spec.name);
      if (spec.name === Streams.dlq.name) this.deps.metrics.dlqMessages.set(state.messages);
      if (config.max_bytes > 0) this.deps.metrics.streamFill.set({ stream: spec.name }, state.bytes / config.max_bytes);
      // A work stream holds only unprocessed messages, so its first is the oldest waiting.
      if (spec.retention === "work") {
        // Server time against wall time, not the QuickBooks clock `now` (a sandbox may run that faster).
        const age = state.messages > 0 ? (Date.now() - Date.parse(state.first_ts)) / 1000 : 0;
        this.deps.metrics.oldestUnprocessed.set({ stream: spec.name }, Math.max(0, age));
      }
    }
    const verified = connected.map((r) => r.verifiedUntil ?? r.connectedAt);
    this.deps.metrics.cdcLag.set(verified.length ? Math.max(0, (this.deps.now() - Math.min(...verified)) / 1000) : 0);
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
