import type { Logger } from "@qbo-webhooks/observability";
import type { LeaderLock } from "./leader-lock.js";

export interface ElectionTiming {
  /** A record not renewed for this long may be taken over. */
  readonly leaseMs: number;
  /** The leader stops acting when it has not renewed for this long; shorter than `leaseMs`. */
  readonly renewDeadlineMs: number;
  /** How often candidates try and the leader renews. */
  readonly retryMs: number;
}

export interface LeadershipEvents {
  /** This replica leads from now on; `signal` aborts when it stops. `epoch` fences its work. */
  started(epoch: number, signal: AbortSignal): void;
  stopped(): void;
}

/**
 * Leader election with the semantics of Kubernetes' client-go: candidates try every `retryMs`;
 * a record counts as expired when its version has not changed for `leaseMs` of *our own* clock
 * (so clocks of different hosts never need to agree); the leader renews by compare-and-set and
 * stops acting once `renewDeadlineMs` passed without a renewal, which is before anyone may take
 * over. Whatever acts must check {@link isLeader} right before it acts.
 */
export class LeaderElector {
  #observed: { version: string; at: number } | undefined;
  #leaderUntil = 0;
  #epoch = 0;
  #leading: AbortController | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Notices a lapse between rounds too, e.g. while a round waits on an unreachable lock. */
  #watchdog: NodeJS.Timeout | undefined;
  #round: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(
    private readonly lock: LeaderLock,
    private readonly identity: string,
    private readonly timing: ElectionTiming,
    private readonly events: LeadershipEvents,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.#watchdog = setInterval(() => this.#check(), 100).unref();
    const tick = () => {
      this.#round = this.#tryAcquireOrRenew().catch((err: unknown) => {
        this.logger.warn({ err, lock: this.lock.description }, "leader election round failed");
      });
      void this.#round.then(() => {
        this.#check();
        if (!this.#stopped) this.#timer = setTimeout(tick, this.timing.retryMs);
      });
    };
    tick();
  }

  /** Whether this replica may act as leader now. */
  isLeader(): boolean {
    return performance.now() < this.#leaderUntil;
  }

  /** The fence of the current leadership: the number of holder changes when it began. */
  get epoch(): number {
    return this.#epoch;
  }

  /** Stops competing and, when leading, gives the lease up so another replica takes over at once. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearInterval(this.#watchdog);
    await this.#round;
    if (this.isLeader()) {
      const current = await this.lock.read().catch(() => undefined);
      if (current?.record.holder === this.identity) {
        await this.lock
          .write({ holder: "", leaseMs: 1, transitions: current.record.transitions }, current.version)
          .catch(() => undefined); // it lapses anyway
      }
    }
    this.#leaderUntil = 0;
    this.#check();
  }

  async #tryAcquireOrRenew(): Promise<void> {
    const started = performance.now();
    const current = await this.lock.read();
    if (current && current.version !== this.#observed?.version)
      this.#observed = { version: current.version, at: started };
    const record = current?.record;
    const mine = record?.holder === this.identity;
    const free = !record || record.holder === "";
    if (!mine && !free && started - (this.#observed?.at ?? started) < record.leaseMs) return;
    const transitions = (record?.transitions ?? 0) + (mine ? 0 : 1);
    const version = await this.lock.write(
      { holder: this.identity, leaseMs: this.timing.leaseMs, transitions },
      current?.version,
    );
    if (version === undefined) return; // another candidate wrote first
    this.#observed = { version, at: started };
    if (!mine) {
      this.#epoch = transitions;
      this.logger.info({ lock: this.lock.description, epoch: transitions }, "became leader");
    }
    // Counted from before the read: a slow round shortens our time rather than stretching it.
    this.#leaderUntil = started + this.timing.renewDeadlineMs;
  }

  /** Tells `events` when leadership began or ended. */
  #check(): void {
    const leading = this.isLeader();
    if (leading && !this.#leading) {
      this.#leading = new AbortController();
      this.events.started(this.#epoch, this.#leading.signal);
    } else if (!leading && this.#leading) {
      this.#leading.abort();
      this.#leading = undefined;
      this.logger.info({ lock: this.lock.description }, "stopped leading");
      this.events.stopped();
    }
  }
}
