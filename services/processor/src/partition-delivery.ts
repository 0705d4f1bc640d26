import { setTimeout as sleep } from "node:timers/promises";
import type { StoredMsg } from "@nats-io/jetstream";
import { AppliedChange, type DeliveredChange, Headers, Streams, Subjects } from "@qbo-webhooks/contracts";
import { type EntityStore, isNewerVersion, StoredEntity } from "@qbo-webhooks/entity-store";
import { backoffMs, deadLetter, KnownEntries, type KV, kvKey, type NatsClient } from "@qbo-webhooks/messaging";
import type { Logger } from "@qbo-webhooks/observability";
import type { LimitFunction } from "p-limit";
import type { Webhook } from "standardwebhooks";
import { z } from "zod";
import type { ProcessorMetrics } from "./processor-metrics.js";

/** Where and how long changes are delivered. */
export interface DeliveryTarget {
  /** The app's endpoint. */
  readonly url: string;
  /** Signs each POST per Standard Webhooks. */
  readonly webhook: Webhook;
  readonly timeoutMs: number;
  /** How long after it was queued a change is retried before it is dead-lettered. */
  readonly retryForMs: number;
  /** First wait after a failed POST; doubles per attempt up to `retryCapMs`. */
  readonly retryBaseMs: number;
  readonly retryCapMs: number;
}

export interface PartitionDeliveryDeps {
  readonly client: NatsClient;
  readonly partition: number;
  readonly target: DeliveryTarget;
  /** KV `qbo-delivery-cursors`. */
  readonly cursors: KV;
  /** Our copy: a replayed change is delivered only if it is still the entity's latest version. */
  readonly store: EntityStore;
  /** POSTs in flight, shared by the replica's partitions. */
  readonly slots: LimitFunction;
  /** Whether this replica still holds the partition. */
  readonly mayDeliver: () => boolean;
  readonly metrics: ProcessorMetrics;
  readonly logger: Logger;
}

/** Realms with dead letters sent back by an operator are looked for this often. */
const REPLAY_SCAN_MS = 5000;
/** Delivered messages are purged (all but the last) at least this often per realm. */
const PURGE_EVERY = 100;

const Cursor = z.coerce.number().int().nonnegative();

type Outcome = "delivered" | "dead_lettered" | "superseded" | "stopped";

/**
 * Delivers one partition's changes to the app while this replica holds the partition's lease:
 * per realm, strictly in queue order, one change at a time, so a realm whose changes fail blocks
 * only itself (as QuickBooks' own queue does, but per company). A failed POST is retried with
 * capped backoff for `retryForMs` after the change was queued, then dead-lettered, and the realm
 * moves on; its `realmSequence` then jumps, which tells the app. Each realm's cursor (KV) moves
 * after each delivery: a crash delivers the last change again, with the same `webhook-id`.
 */
export class PartitionDelivery {
  readonly #running = new Map<string, Promise<void>>();
  readonly #again = new Set<string>();
  readonly #stop = new AbortController();
  readonly #replayScan: NodeJS.Timeout;
  /**
   * While this replica holds the partition, it alone moves its realms' cursors: each is read once per
   * holding, then written over this holder's last write.
   */
  readonly #cursors: KnownEntries;

  private constructor(private readonly deps: PartitionDeliveryDeps) {
    this.#cursors = new KnownEntries(deps.cursors);
    this.#replayScan = setInterval(() => void this.#scan(`${prefix(deps.partition)}*.replay`), REPLAY_SCAN_MS).unref();
  }

  /** Starts delivering whatever the partition's realms have queued (a previous holder's leftovers included). */
  static start(deps: PartitionDeliveryDeps): PartitionDelivery {
    const delivery = new PartitionDelivery(deps);
    void delivery.#scan(Subjects.deliveriesOfPartition(deps.partition));
    return delivery;
  }

  /** A change was queued for the realm: deliver it (after what is ahead of it). */
  queued(realmId: string): void {
    if (this.#stop.signal.aborted) return;
    if (this.#running.has(realmId)) {
      this.#again.add(realmId);
      return;
    }
    const run = this.#run(realmId)
      .catch((err: unknown) => {
        this.deps.logger.error({ err, realmId }, "delivery interrupted; trying again");
        setTimeout(() => this.queued(realmId), 1000).unref();
      })
      .finally(() => {
        this.#running.delete(realmId);
        if (this.#again.delete(realmId)) this.queued(realmId);
      });
    this.#running.set(realmId, run);
  }

  /** Stops at once: a POST in flight is abandoned (and repeated by the next holder). */
  async stop(): Promise<void> {
    this.#stop.abort();
    clearInterval(this.#replayScan);
    await Promise.all(this.#running.values());
  }

  get #active(): boolean {
    return !this.#stop.signal.aborted && this.deps.mayDeliver();
  }

  async #scan(filter: string): Promise<void> {
    try {
      const info = await this.deps.client.jsm.streams.info(Streams.deliveries.name, { subjects_filter: filter });
      for (const subject of Object.keys(info.state.subjects ?? {})) {
        const realmId = subject.slice(prefix(this.deps.partition).length).split(".")[0];
        if (realmId) this.queued(realmId);
      }
    } catch (err) {
      this.deps.logger.warn({ err, partition: this.deps.partition }, "cannot list queued deliveries yet");
    }
  }

  async #run(realmId: string): Promise<void> {
    const { client, partition } = this.deps;
    const subject = Subjects.deliveries(partition, realmId);
    const replays = Subjects.deliveryReplays(partition, realmId);
    // Read once per holding: after that, the cursor is what this holder last wrote.
    let cursor = Cursor.parse((await this.#cursors.value(kvKey(realmId))) ?? 0);
    let purgedTo = cursor;
    try {
      while (this.#active) {
        // Asked together: a replay waiting goes first, and the next change is asked for again after it.
        const [replay, next] = await Promise.all([this.#next(replays, 1), this.#next(subject, cursor + 1)]);
        if (replay) {
          if ((await this.#deliver(realmId, replay, true)) === "stopped") return;
          await client.jsm.streams.deleteMessage(Streams.deliveries.name, replay.seq);
          continue;
        }
        if (!next) return;
        if ((await this.#deliver(realmId, next, false)) === "stopped") return;
        cursor = next.seq;
        await this.#cursors.update(kvKey(realmId), (current) =>
          current !== undefined && Cursor.parse(current) >= cursor ? undefined : String(cursor),
        );
        if (cursor - purgedTo >= PURGE_EVERY) purgedTo = await this.#purge(subject, cursor);
      }
    } finally {
      if (cursor > purgedTo) await this.#purge(subject, cursor);
    }
  }

  /** The first message on `subject` at or after `seq`, read from the stream's leader (never a stale replica). */
  async #next(subject: string, seq: number): Promise<StoredMsg | null> {
    // The server's message-get takes `next_by_subj` (2.10+); the client's type for it names only `seq`.
    const query = { seq, next_by_subj: subject };
    return this.deps.client.jsm.streams.getMessage(Streams.deliveries.name, query);
  }

  /** Drops the realm's delivered changes but the last, whose `Qbo-Realm-Seq` the next one continues. */
  async #purge(subject: string, below: number): Promise<number> {
    await this.deps.client.jsm.streams.purge(Streams.deliveries.name, { filter: subject, seq: below });
    return below;
  }

  async #deliver(realmId: string, msg: StoredMsg, replay: boolean): Promise<Outcome> {
    const { metrics, target } = this.deps;
    const webhookId =
      msg.header.get(replay ? Headers.webhookId : Headers.msgId) || `${Streams.deliveries.name}-${msg.seq}`;
    const realmSequence = Number(msg.header.get(Headers.realmSequence));
    const parsed = AppliedChange.safeParse(msg.json());
    if (!parsed.success || !Number.isSafeInteger(realmSequence) || realmSequence < 1) {
      return this.#deadLetter(realmId, msg, webhookId, 0, "not an applied change with its realm sequence");
    }
    if (replay && (await this.#superseded(parsed.data))) {
      metrics.deliveries.inc({ result: "superseded" });
      this.deps.logger.info({ realmId, webhookId }, "replayed delivery skipped: a newer version of the entity exists");
      return "superseded";
    }
    const delivered: DeliveredChange = { ...parsed.data, realmSequence };
    const body = JSON.stringify(delivered);
    let blocked = false;
    try {
      for (let attempt = 0; ; attempt++) {
        if (!this.#active) return "stopped";
        const problem = await this.deps.slots(() => this.#post(webhookId, body));
        if (problem === undefined) {
          metrics.deliveries.inc({ result: "delivered" });
          return "delivered";
        }
        if (this.#stop.signal.aborted) return "stopped";
        metrics.deliveries.inc({ result: "failed" });
        if (!blocked) metrics.blockedRealms.inc();
        blocked = true;
        if (Date.now() - msg.time.getTime() >= target.retryForMs) {
          return this.#deadLetter(realmId, msg, webhookId, attempt + 1, problem);
        }
        const wait = backoffMs(attempt, target.retryBaseMs, target.retryCapMs);
        const stopped = await sleep(wait, false, { signal: this.#stop.signal }).catch(() => true);
        if (stopped) return "stopped";
      }
    } finally {
      if (blocked) metrics.blockedRealms.dec();
    }
  }

  /** A replayed change is out of date when our copy moved past it (a newer version, or a deletion). */
  async #superseded(change: AppliedChange): Promise<boolean> {
    const copy = await this.deps.store.read(change.realmId, change.entity, change.id);
    if (!change.data) return copy !== undefined;
    return copy === undefined || isNewerVersion(copy, StoredEntity.parse(change.data));
  }

  /** POSTs one change; answers what went wrong, or undefined when the app took it (2xx). */
  async #post(webhookId: string, body: string): Promise<string | undefined> {
    const { target } = this.deps;
    const now = new Date();
    try {
      const response = await fetch(target.url, {
        method: "POST",
        body,
        signal: AbortSignal.any([this.#stop.signal, AbortSignal.timeout(target.timeoutMs)]),
        headers: {
          "content-type": "application/json",
          "webhook-id": webhookId,
          "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
          "webhook-signature": target.webhook.sign(webhookId, now, body),
        },
      });
      await response.arrayBuffer();
      return response.ok ? undefined : `the app answered ${response.status}`;
    } catch (err) {
      return `no answer: ${err instanceof Error ? err.message : String(err)}`;
    }
  }

  async #deadLetter(
    realmId: string,
    msg: StoredMsg,
    webhookId: string,
    attempts: number,
    problem: string,
  ): Promise<Outcome> {
    const reason = await deadLetter(this.deps.client, msg.data, {
      stage: "delivery",
      reason: problem,
      msgId: `delivery-${webhookId}-${msg.seq}`,
      attempts,
      realmId,
      headers: {
        [Headers.webhookId]: webhookId,
        [Headers.realmSequence]: msg.header.get(Headers.realmSequence),
      },
    });
    this.deps.metrics.deliveries.inc({ result: "dead_lettered" });
    this.deps.logger.error({ webhookId, reason, attempts }, "change delivery dead-lettered");
    return "dead_lettered";
  }
}

const prefix = (partition: number) => Subjects.deliveriesOfPartition(partition).slice(0, -1);
