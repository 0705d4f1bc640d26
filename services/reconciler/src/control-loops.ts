import { companyConditions, type RealmRecord, RealmStatus, sameConditions } from "@qbo-webhooks/contracts";
import type { RealmFollower, RealmRegistry } from "@qbo-webhooks/entity-store";
import { backoffMs, type NatsClient } from "@qbo-webhooks/messaging";
import type { Logger } from "@qbo-webhooks/observability";
import { type KvTokenSource, QuickBooksError } from "@qbo-webhooks/quickbooks";
import pLimit from "p-limit";
import { publishBacklog } from "./backlog-gauges.js";
import { DeadLetterCounts } from "./dead-letter-counts.js";
import { type CdcDeps, type CdcKind, nextDailyCdc, runRealmCdc } from "./realm-cdc.js";
import type { ReconcilerMetrics } from "./reconciler-metrics.js";
import { disconnectIfTokensRefused, keepTokensAlive } from "./token-keeper.js";
import { type SilenceLimits, WebhookRhythm } from "./webhook-rhythm.js";

/** How long a finished run's result may take to reach the followed records before it is given up on. */
const RESULT_WAIT_MS = 30_000;
export interface LoopSettings extends SilenceLimits {
  readonly intervalMs: number;
  readonly tokenRefreshAheadMs: number;
  readonly dailyCdc: boolean;
  readonly cdcConcurrency: number;
}

export interface LoopDeps extends CdcDeps {
  readonly tokens: KvTokenSource;
  readonly registry: RealmRegistry;
  readonly metrics: ReconcilerMetrics;
  readonly logger: Logger;
  readonly client: NatsClient;
  /** Told whether QuickBooks refused our client credentials (`invalid_client`) on the last refresh. */
  readonly clientRefused: (problem: string | undefined) => void;
}

/**
 * What the leader does, every `intervalMs` while it leads: keeps each realm's tokens alive
 * (`token-keeper`), runs CDC per realm when one is due (at the start of leadership, on request or
 * reconnect, after a realm's webhooks went silent by its own rhythm (`webhook-rhythm`), and once a
 * day), and publishes the pipeline's backlog (`backlog-gauges`). This class holds the CDC schedule.
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
  readonly #limit: ReturnType<typeof pLimit>;
  #timer: NodeJS.Timeout | undefined;
  #tick: Promise<void> = Promise.resolve();
  #rhythm: WebhookRhythm | undefined;
  #deadLetters: DeadLetterCounts | undefined;
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
    this.#rhythm = WebhookRhythm.follow(this.deps.client, this.deps.now, this.deps.logger);
    this.#deadLetters = DeadLetterCounts.follow(this.deps.client, this.deps.logger);
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
    this.#rhythm?.stop();
    this.#rhythm = undefined;
    this.#deadLetters?.stop();
    this.#deadLetters = undefined;
    this.#realms?.stop();
    this.#realms = undefined;
  }

  async #once(): Promise<void> {
    const realms = this.#realms?.list() ?? [];
    const connected = realms.filter(({ record }) => record.status === "connected");
    for (const status of RealmStatus.options)
      this.deps.metrics.realms.set({ status }, realms.filter(({ record }) => record.status === status).length);
    for (const { record } of realms) {
      if (!this.deps.stillLeader()) return;
      const realm = await this.#keepRecord(record);
      if (realm.status !== "connected") continue;
      if (!(await keepTokensAlive(this.deps, realm, this.settings.tokenRefreshAheadMs))) continue;
      // Paused: tokens stay fresh, but nothing is published for it until it resumes (then a catch-up).
      if (realm.paused || this.#awaitingResult(realm)) continue;
      const kind = this.#cdcDue(realm);
      if (kind) this.#runCdc(realm, kind);
    }
    await publishBacklog(
      this.deps.client,
      this.deps.metrics,
      connected.map(({ record }) => record),
      this.deps.now(),
    );
  }

  #cdcDue(realm: RealmRecord): CdcKind | undefined {
    const now = this.deps.now();
    if (this.#running.has(realm.realmId)) return undefined;
    const retry = this.#retryAt.get(realm.realmId);
    if (retry && performance.now() < retry.at) return undefined;
    if (realm.cdcRequestedAt !== undefined) return "requested";
    if (!this.#caughtUp.has(realm.realmId)) return "catch-up";
    const heardOf = Math.max(realm.lastWebhookAt ?? 0, realm.lastCdcAt ?? 0, realm.connectedAt);
    if (now - heardOf > (this.#rhythm?.silenceAllowed(realm.realmId, this.settings) ?? this.settings.silenceMs))
      return "catch-up";
    if (this.settings.dailyCdc && now >= nextDailyCdc(realm)) return "daily";
    return undefined;
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
        const unauthorized = err instanceof QuickBooksError && err.code === "QBO_UNAUTHORIZED";
        if (unauthorized && (await disconnectIfTokensRefused(this.deps, realm.realmId).catch(() => false))) return;
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

  /**
   * Keeps in the realm's record what this leader sees of it (its last webhook, its dead letters)
   * and the conditions that follow; writes only what changed. Answers the record as it now is.
   */
  async #keepRecord(realm: RealmRecord): Promise<RealmRecord> {
    const now = this.deps.now();
    const seen = this.#rhythm?.lastSeen(realm.realmId);
    const letters = this.#deadLetters?.of(realm.realmId) ?? 0;
    const kept = (r: RealmRecord): RealmRecord => {
      const next = {
        ...r,
        ...(seen !== undefined && seen > (r.lastWebhookAt ?? 0) ? { lastWebhookAt: seen } : {}),
        ...(letters > (r.deadLetters ?? 0) ? { deadLetters: letters } : {}),
      };
      return {
        ...next,
        conditions: companyConditions(next, r.conditions, { now, silenceMs: this.settings.silenceMs }),
      };
    };
    const changed = (r: RealmRecord, next: RealmRecord) =>
      next.lastWebhookAt !== r.lastWebhookAt ||
      next.deadLetters !== r.deadLetters ||
      !sameConditions(r.conditions, next.conditions ?? []);
    if (!changed(realm, kept(realm))) return realm;
    const updated = await this.deps.registry.update(realm.realmId, (r) => {
      if (!r) return undefined;
      const next = kept(r);
      return changed(r, next) ? next : undefined;
    });
    return updated ?? realm;
  }
}
