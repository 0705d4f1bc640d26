import { isRevisionConflict, type KV } from "@qbo-webhooks/messaging";
import type { Logger } from "@qbo-webhooks/observability";
import { z } from "zod";

/** A partition lease as stored; no clock in it is compared across hosts. */
const LeaseValue = z.object({
  owner: z.string(),
  /** The lease lapses when its record has not changed for this long, on the observer's own clock. */
  ttlMs: z.number().optional(),
  /** The KV revision at which the holder took the lease. */
  epoch: z.number(),
});
type LeaseValue = z.infer<typeof LeaseValue>;

interface Held {
  revision: number;
  epoch: number;
  /** Monotonic deadline after which this holder stops work on the partition. */
  validUntil: number;
}

export interface LeaseEvents {
  /**
   * The partition is ours from now on; start consuming it. Called from the heartbeat without
   * waiting: a slow start must not hold up the renewal of other leases.
   */
  acquired(partition: number): void;
  /** The partition is no longer ours (released, or lost); stop consuming it. Awaited only by `stop`. */
  released(partition: number): Promise<void>;
}

/**
 * Fair shares of the partitions through leases in KV `qbo-leases`, with the clock rules of
 * client-go's leader election (`LeaderElector`): every replica heartbeats `member.<id>` and counts
 * as live the members whose key changed within a TTL of *its own* monotonic clock (watched, not
 * listed); each takes ceil(partitions / live members) partitions, renews them by compare-and-set,
 * gives up extras when replicas join, and takes over a lease whose record has not changed for a
 * TTL of its own clock. A holder may work until two thirds of a TTL after the start of its last
 * successful renewal (`isValid`), so a paused holder has stopped before another can take over;
 * what it appends is fenced by the stream besides (`FencedAppender`).
 */
export class PartitionLeases {
  readonly #held = new Map<number, Held>();
  readonly #observed = new Map<number, { revision: number; at: number }>();
  readonly #members = new Map<string, { revision: number; at: number }>();
  #watch: { stop(): void } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #beat: Promise<void> = Promise.resolve();
  #stopped = false;
  #joined = false;

  constructor(
    private readonly kv: KV,
    private readonly options: { owner: string; partitions: number; ttlMs: number; logger: Logger },
    private readonly events: LeaseEvents,
  ) {}

  async start(): Promise<void> {
    await this.#watchMembers();
    const tick = () => {
      this.#beat = this.#heartbeat().catch((err: unknown) =>
        this.options.logger.error({ err }, "lease heartbeat failed"),
      );
      void this.#beat.then(() => {
        if (!this.#stopped) this.#timer = setTimeout(tick, this.options.ttlMs / 5);
      });
    };
    tick();
  }

  /** Partitions held now. */
  owned(): number[] {
    return [...this.#held.keys()].sort((a, b) => a - b);
  }

  /** Whether work on `partition` may go on: the lease is held and cannot have lapsed. */
  isValid(partition: number): boolean {
    const held = this.#held.get(partition);
    return held !== undefined && performance.now() < held.validUntil;
  }

  /** Gives a partition up without waiting for its work (which never started, or failed). */
  async giveUp(partition: number): Promise<void> {
    await this.#release(partition, false);
  }

  /** Releases every lease (after stopping their work) and leaves the membership. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#beat;
    this.#watch?.stop();
    await Promise.all(this.owned().map((partition) => this.#release(partition, true)));
    await this.kv.delete(`member.${this.options.owner}`).catch(() => undefined); // best effort: it lapses anyway
  }

  /** One watch for the whole life of the replica (listing keys would leave a consumer behind each time). */
  async #watchMembers(): Promise<void> {
    const watch = await this.kv.watch({ key: "member.*" });
    this.#watch = watch;
    void (async () => {
      try {
        for await (const entry of watch) {
          const id = entry.key.slice("member.".length);
          if (entry.operation === "PUT") this.#members.set(id, { revision: entry.revision, at: performance.now() });
          else this.#members.delete(id);
        }
      } catch (err) {
        this.options.logger.warn({ err }, "membership watch ended; watching again");
      }
      // NATS unreachable: keep trying; meanwhile the members already seen age out on our clock.
      const again = (): void => {
        if (!this.#stopped) void this.#watchMembers().catch(() => setTimeout(again, 1000).unref());
      };
      setTimeout(again, 1000).unref();
    })();
  }

  async #heartbeat(): Promise<void> {
    await this.kv.put(`member.${this.options.owner}`, String(Date.now()));
    // A newcomer announces itself one beat before claiming, so replicas starting together see
    // each other and split the partitions at once instead of one taking all and giving back.
    if (!this.#joined) {
      this.#joined = true;
      return;
    }
    const share = Math.ceil(this.options.partitions / Math.max(1, await this.#liveMembers()));
    // Together, not one after another: one write for all of them, and none waits behind the others.
    await Promise.all(this.owned().map((partition) => this.#renew(partition)));
    for (const partition of this.owned().slice(share).reverse()) await this.#release(partition, false);
    for (let partition = 0; partition < this.options.partitions && this.#held.size < share; partition++) {
      if (!this.#held.has(partition)) await this.#tryTake(partition);
    }
  }

  /** Members heard from within a TTL; those silent for three are removed from the bucket. */
  async #liveMembers(): Promise<number> {
    const now = performance.now();
    let live = 0;
    for (const [id, seen] of this.#members) {
      const silent = now - seen.at;
      if (silent < this.options.ttlMs || id === this.options.owner) live++;
      else if (silent > 3 * this.options.ttlMs) {
        // Compare-and-set: a member that came back meanwhile keeps its key.
        await this.kv.delete(`member.${id}`, { previousSeq: seen.revision }).catch((err: unknown) => {
          if (!isRevisionConflict(err)) throw err;
        });
        this.#members.delete(id);
      }
    }
    return live;
  }

  async #renew(partition: number): Promise<void> {
    const held = this.#held.get(partition);
    if (!held) return;
    // Counted from before the write: a slow renewal shortens our time rather than stretching it.
    const started = performance.now();
    try {
      held.revision = await this.kv.update(key(partition), this.#value(held.epoch), held.revision);
      held.validUntil = started + (this.options.ttlMs * 2) / 3;
    } catch (err) {
      if (!isRevisionConflict(err)) throw err;
      this.options.logger.warn({ partition }, "partition lease lost");
      this.#held.delete(partition);
      void this.events.released(partition);
    }
  }

  async #tryTake(partition: number): Promise<void> {
    const started = performance.now();
    const entry = await this.kv.get(key(partition));
    if (entry?.operation === "PUT") {
      const lease = LeaseValue.parse(entry.json());
      const observed = this.#observed.get(partition);
      if (observed?.revision !== entry.revision)
        this.#observed.set(partition, { revision: entry.revision, at: started });
      // Taken over only once its record stood still for a TTL of our own clock.
      const ttlMs = lease.ttlMs ?? this.options.ttlMs;
      if (lease.owner !== this.options.owner && started - (this.#observed.get(partition)?.at ?? started) < ttlMs)
        return;
    }
    try {
      let revision = entry
        ? await this.kv.update(key(partition), this.#value(0), entry.revision)
        : await this.kv.create(key(partition), this.#value(0));
      // The revision we took it at is the epoch; write it into the lease so renewals keep it.
      revision = await this.kv.update(key(partition), this.#value(revision), revision);
      this.#held.set(partition, { revision, epoch: revision, validUntil: started + (this.options.ttlMs * 2) / 3 });
      this.options.logger.info({ partition }, "partition acquired");
      this.events.acquired(partition);
    } catch (err) {
      if (!isRevisionConflict(err)) throw err; // another replica took it first
    }
  }

  /** Stops the partition's work (awaited when `wait`), then frees the lease by compare-and-set. */
  async #release(partition: number, wait: boolean): Promise<void> {
    const held = this.#held.get(partition);
    if (!held) return;
    this.#held.delete(partition);
    const stopped = this.events.released(partition);
    if (wait) await stopped;
    try {
      await this.kv.delete(key(partition), { previousSeq: held.revision });
      this.options.logger.info({ partition }, "partition released");
    } catch (err) {
      if (!isRevisionConflict(err)) throw err; // already taken over: nothing to give back
    }
  }

  #value(epoch: number): string {
    const value: LeaseValue = { owner: this.options.owner, ttlMs: this.options.ttlMs, epoch };
    return JSON.stringify(value);
  }
}

const key = (partition: number) => `partition.${partition}`;
