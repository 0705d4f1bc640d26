import { ChangeEvent, Consumers, Streams, Subjects } from "@qbo-webhooks/contracts";
import { DurableConsumer, deadLetter, type JsMsg, type KV } from "@qbo-webhooks/messaging";
import type { LimitFunction } from "p-limit";
import { ChangeOutputs } from "./change-outputs.js";
import { type DeliveryTarget, PartitionDelivery } from "./partition-delivery.js";
import { type BatchDeps, type Pending, processRealmBatch } from "./realm-batch.js";

export interface WorkerDeps extends Omit<BatchDeps, "stillOwner" | "outputs"> {
  readonly coalesceMs: number;
  /** Realm batches running at once, shared by every partition of the replica. */
  readonly batchSlots: LimitFunction;
  readonly stillOwner: (partition: number) => boolean;
  /** Delivery to the app, when it takes deliveries. */
  readonly delivery?: { readonly target: DeliveryTarget; readonly cursors: KV; readonly slots: LimitFunction };
  /** Whether the company's processing is held (its record says paused). */
  readonly paused: (realmId: string) => boolean;
}

/** The most events of one realm handled in one batch. */
const MAX_BATCH = 500;
/**
 * Short, so a crashed replica's unacked events reach the next holder within seconds; events
 * waiting or in work here are kept alive with `working()` meanwhile.
 */
const ACK_WAIT_MS = 15_000;
/**
 * Events of paused realms a partition keeps in hand (each one counts against its consumer's
 * unacknowledged limit, which other realms need too); the rest go back to the stream for
 * `HELD_RETRY_MS`. Either way none is acked, so none is lost.
 */
const MAX_HELD = 256;
const HELD_RETRY_MS = 10_000;
/** How soon a resumed realm's held events start. */
const RESUME_CHECK_MS = 500;
/**
 * A realm without a batch for this many coalescing windows is quiet: its next event starts at once.
 * QuickBooks sends a production app's notifications per aggregation window (a minute or more), so
 * waiting for a realm's next one there only delays the first; a realm busy in a burst keeps
 * coalescing.
 */
const QUIET_WINDOWS = 5;

interface RealmQueue {
  pending: Pending[];
  /** The batch being applied now. */
  inWork: readonly Pending[];
  /** When the realm's last batch ended (`performance.now()`): whether the realm is quiet. */
  lastEnd: number;
  /** Cancels the batch due to start. */
  cancelStart: (() => void) | undefined;
  running: Promise<void> | undefined;
}

/**
 * Consumes one partition while this replica holds its lease. Realms run concurrently; each
 * realm's events run strictly one batch after another. A realm's batch starts `coalesceMs` after
 * its first event arrived, or after its previous batch ended, and the events that arrive meanwhile
 * share it (and its QuickBooks calls); a quiet realm's starts at once. `batchSlots`, shared by all partitions of the replica, caps the realm
 * batches running at once, so one replica's load stays bounded and more replicas bring more
 * throughput.
 */
export class PartitionWorker {
  readonly #realms = new Map<string, RealmQueue>();
  readonly #outputs: ChangeOutputs;
  readonly #delivery: PartitionDelivery | undefined;
  #consumer: DurableConsumer | undefined;
  #stopping = false;
  /** Keeps the events in hand alive, and forgets the realms with nothing in hand that are quiet. */
  readonly #tending = setInterval(() => {
    for (const [realmId, queue] of this.#realms) {
      for (const { msg } of [...queue.pending, ...queue.inWork]) msg.working();
      if (this.#idle(queue) && this.#quiet(queue)) this.#realms.delete(realmId);
    }
  }, ACK_WAIT_MS / 3).unref();
  /** Realms held because paused, each with how many of its events are in hand. */
  readonly #held = new Map<string, number>();
  #heldCount = 0;
  /** Runs only while realms are held: an idle timer per partition would wake the process for nothing. */
  #resumeCheck: NodeJS.Timeout | undefined;

  private constructor(
    readonly partition: number,
    private readonly deps: WorkerDeps,
  ) {
    const owner = () => deps.stillOwner(partition);
    this.#delivery =
      deps.delivery &&
      PartitionDelivery.start({
        ...deps.delivery,
        client: deps.client,
        partition,
        store: deps.store,
        mayDeliver: owner,
        metrics: deps.metrics,
        logger: deps.logger,
      });
    this.#outputs = new ChangeOutputs(deps.client, partition, owner, this.#delivery);
  }

  /** @throws when the partition's consumer cannot be set up (then nothing runs: the caller gives the lease up). */
  static async start(partition: number, deps: WorkerDeps): Promise<PartitionWorker> {
    const worker = new PartitionWorker(partition, deps);
    worker.#consumer = await DurableConsumer.start(deps.client, {
      stream: Streams.events.name,
      durable: Consumers.processor(partition),
      filterSubjects: [Subjects.eventsOfPartition(partition)],
      ackWaitMs: ACK_WAIT_MS,
      batch: 64,
      logger: deps.logger,
      handle: (msg) => worker.#accept(msg),
    }).catch(async (err: unknown) => {
      await worker.#delivery?.stop();
      throw err;
    });
    return worker;
  }

  /**
   * Stops pulling and delivering, finishes the batches under way (a lapsed lease makes them hand
   * their events back), and hands queued events back to JetStream.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#tending);
    await this.#delivery?.stop();
    await this.#consumer?.stop();
    for (const queue of this.#realms.values()) {
      queue.cancelStart?.();
      await queue.running;
      for (const { msg } of queue.pending.splice(0)) msg.nak();
    }
    for (const realmId of [...this.#held.keys()]) this.#release(realmId);
  }

  async #accept(msg: JsMsg): Promise<void> {
    const parsed = ChangeEvent.safeParse(msg.json());
    if (!parsed.success) {
      await deadLetter(this.deps.client, msg.data, {
        stage: "processor",
        reason: "not a ChangeEvent",
        msgId: `processor-invalid-${msg.seq}`,
      });
      this.deps.metrics.events.inc({ result: "dead_lettered" });
      msg.term("not a ChangeEvent");
      return;
    }
    if (this.#stopping) {
      msg.nak();
      return;
    }
    const realmId = parsed.data.realmId;
    const queue = this.#realms.get(realmId) ?? {
      pending: [],
      inWork: [],
      lastEnd: Number.NEGATIVE_INFINITY,
      cancelStart: undefined,
      running: undefined,
    };
    this.#realms.set(realmId, queue);
    queue.pending.push({ event: parsed.data, msg });
    this.#schedule(realmId, queue);
  }

  #schedule(realmId: string, queue: RealmQueue): void {
    if (queue.cancelStart || queue.running || queue.pending.length === 0 || this.#stopping) return;
    if (this.deps.paused(realmId)) {
      this.#hold(realmId, queue);
      return;
    }
    queue.cancelStart = startAfter(this.#quiet(queue) ? 0 : this.deps.coalesceMs, () => {
      queue.cancelStart = undefined;
      queue.running = this.deps
        .batchSlots(() => this.#run(realmId, queue))
        .finally(() => {
          queue.running = undefined;
          queue.lastEnd = performance.now();
          this.#schedule(realmId, queue);
        });
    });
  }

  /** Nothing of the realm waits, starts or runs: only when its last batch ended is remembered. */
  #idle(queue: RealmQueue): boolean {
    return queue.pending.length === 0 && !queue.cancelStart && !queue.running;
  }

  /** Whether the realm had no batch for `QUIET_WINDOWS` coalescing windows (a forgotten realm had none). */
  #quiet(queue: RealmQueue): boolean {
    return performance.now() - queue.lastEnd >= QUIET_WINDOWS * this.deps.coalesceMs;
  }

  /**
   * Keeps a paused realm's events unapplied: the oldest in hand (up to `MAX_HELD` per partition),
   * the others back to the stream for a while. Resuming applies them in order.
   */
  #hold(realmId: string, queue: RealmQueue): void {
    this.#release(realmId);
    queue.pending.sort((a, b) => Date.parse(a.event.occurredAt) - Date.parse(b.event.occurredAt));
    const kept = Math.max(0, Math.min(queue.pending.length, MAX_HELD - this.#heldCount));
    for (const { msg } of queue.pending.splice(kept)) msg.nak(HELD_RETRY_MS);
    this.#held.set(realmId, queue.pending.length);
    this.#heldCount += queue.pending.length;
    this.deps.metrics.heldEvents.inc(queue.pending.length);
    if (queue.pending.length === 0) this.#realms.delete(realmId);
    this.#resumeCheck ??= setInterval(() => this.#resumeHeld(), RESUME_CHECK_MS).unref();
  }

  /** Applies the held events of every realm resumed since; stops checking once none is held. */
  #resumeHeld(): void {
    for (const realmId of [...this.#held.keys()]) {
      if (this.deps.paused(realmId)) continue;
      this.#release(realmId);
      const queue = this.#realms.get(realmId);
      if (queue) this.#schedule(realmId, queue);
    }
  }

  /** Stops counting the realm's events as held (resumed, or about to be held anew). */
  #release(realmId: string): void {
    const count = this.#held.get(realmId);
    if (count === undefined) return;
    this.#held.delete(realmId);
    this.#heldCount -= count;
    this.deps.metrics.heldEvents.dec(count);
    if (this.#held.size === 0) {
      clearInterval(this.#resumeCheck);
      this.#resumeCheck = undefined;
    }
  }

  async #run(realmId: string, queue: RealmQueue): Promise<void> {
    // Stopped while waiting for a slot: `stop` hands the queued events back.
    if (this.#stopping) return;
    // Paused while waiting: the events stay queued, and the next scheduling holds them.
    if (this.deps.paused(realmId)) return;
    const batch = queue.pending.splice(0, MAX_BATCH);
    queue.inWork = batch;
    try {
      await processRealmBatch(
        { ...this.deps, outputs: this.#outputs, stillOwner: () => this.deps.stillOwner(this.partition) },
        realmId,
        batch,
      );
    } catch (err) {
      // NATS or KV trouble: JetStream redelivers whatever was not acked.
      this.deps.logger.error(
        { err, realmId, partition: this.partition },
        "realm batch failed; events will be redelivered",
      );
      for (const { msg } of batch) msg.nak(1000);
    } finally {
      queue.inWork = [];
    }
  }
}

/**
 * Calls `start` in `ms`; with no time to wait, after the event loop's current phase, so that the
 * events handled in that phase join the batch. Answers how to cancel it.
 */
function startAfter(ms: number, start: () => void): () => void {
  if (ms > 0) {
    const timer = setTimeout(start, ms);
    return () => clearTimeout(timer);
  }
  const immediate = setImmediate(start);
  return () => clearImmediate(immediate);
}
