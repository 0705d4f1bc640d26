import { isRevisionConflict, type KV } from "@qbo-webhooks/messaging";
import type { Logger } from "@qbo-webhooks/observability";

interface LeaseValue {
  readonly owner: string;
  /** ms since the epoch. */
  readonly expiresAt: number;
  /** The KV revision at which the holder took the lease: the fence of its work. */
  readonly epoch: number;
}

interface Held {
  revision: number;
  epoch: number;
  /** Local deadline after which this holder stops work on the partition. */
  validUntil: number;
}

export interface LeaseEvents {
  /** The partition is ours from now on; start consuming it. */
  acquired(partition: number): Promise<void>;
  /** The partition is no longer ours (released, or lost); stop consuming it before resolving. */
  released(partition: number): Promise<void>;
}

/**
 * Fair shares of the partitions through leases in KV `qbo-leases`. Every replica heartbeats a
 * `member.<id>` key; each takes ceil(partitions / live members) partitions, renews them by
 * compare-and-set, gives up extras when replicas join, and takes over leases that lapsed. A holder
 * stops work a third of a TTL before its lease could lapse, so a paused holder has stopped before
 * another can take over.
 */
export class PartitionLeases {
  readonly #held = new Map<number, Held>();
  #timer: NodeJS.Timeout | undefined;
  #beat: Promise<void> = Promise.resolve();
  #stopped = false;
  #joined = false;

  constructor(
    private readonly kv: KV,
    private readonly options: { owner: string; partitions: number; ttlMs: number; logger: Logger },
    private readonly events: LeaseEvents,
  ) {}

  start(): void {
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
    return held !== undefined && Date.now() < held.validUntil;
  }

  /** Releases every lease (after stopping their work) and leaves the membership. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#beat;
    await Promise.all(this.owned().map((partition) => this.#release(partition)));
    await this.kv.delete(`member.${this.options.owner}`).catch(() => undefined); // best effort: it lapses anyway
  }

  async #heartbeat(): Promise<void> {
    const now = Date.now();
    await this.kv.put(`member.${this.options.owner}`, String(now));
    // A newcomer announces itself one beat before claiming, so replicas starting together see
    // each other and split the partitions at once instead of one taking all and giving back.
    if (!this.#joined) {
      this.#joined = true;
      return;
    }
    const live = await this.#liveMembers(now);
    const share = Math.ceil(this.options.partitions / Math.max(1, live));

    for (const partition of this.owned()) await this.#renew(partition);
    for (const partition of this.owned().slice(share).reverse()) await this.#release(partition);
    for (let partition = 0; partition < this.options.partitions && this.#held.size < share; partition++) {
      if (!this.#held.has(partition)) await this.#tryTake(partition);
    }
  }

  async #liveMembers(now: number): Promise<number> {
    let live = 0;
    for await (const key of await this.kv.keys("member.*")) {
      const entry = await this.kv.get(key);
      if (entry?.operation === "PUT" && now - Number(entry.string()) < this.options.ttlMs) live++;
    }
    return live;
  }

  async #renew(partition: number): Promise<void> {
    const held = this.#held.get(partition);
    if (!held) return;
    const now = Date.now();
    try {
      held.revision = await this.kv.update(key(partition), this.#value(held.epoch, now), held.revision);
      held.validUntil = now + (this.options.ttlMs * 2) / 3;
    } catch (err) {
      if (!isRevisionConflict(err)) throw err;
      this.options.logger.warn({ partition }, "partition lease lost");
      this.#held.delete(partition);
      await this.events.released(partition);
    }
  }

  async #tryTake(partition: number): Promise<void> {
    const now = Date.now();
    const entry = await this.kv.get(key(partition));
    try {
      let revision: number;
      if (entry?.operation !== "PUT") {
        revision = entry
          ? await this.kv.update(key(partition), this.#value(0, now), entry.revision)
          : await this.kv.create(key(partition), this.#value(0, now));
      } else {
        const lease = entry.json<LeaseValue>();
        if (lease.expiresAt > now) return;
        revision = await this.kv.update(key(partition), this.#value(0, now), entry.revision);
      }
      // The revision we took it at is the fence; write it into the lease so renewals keep it.
      revision = await this.kv.update(key(partition), this.#value(revision, now), revision);
      this.#held.set(partition, { revision, epoch: revision, validUntil: now + (this.options.ttlMs * 2) / 3 });
      this.options.logger.info({ partition }, "partition acquired");
      await this.events.acquired(partition);
    } catch (err) {
      if (!isRevisionConflict(err)) throw err; // another replica took it first
    }
  }

  async #release(partition: number): Promise<void> {
    const held = this.#held.get(partition);
    if (!held) return;
    this.#held.delete(partition);
    await this.events.released(partition);
    try {
      await this.kv.delete(key(partition), { previousSeq: held.revision });
      this.options.logger.info({ partition }, "partition released");
    } catch (err) {
      if (!isRevisionConflict(err)) throw err; // already taken over: nothing to give back
    }
  }

  #value(epoch: number, now: number): string {
    const value: LeaseValue = { owner: this.options.owner, expiresAt: now + this.options.ttlMs, epoch };
    return JSON.stringify(value);
  }
}

const key = (partition: number) => `partition.${partition}`;
