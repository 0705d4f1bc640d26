/**
 * The sandbox's time. It runs at `speed` times real time (60 makes QuickBooks' 100-minute legacy
 * retry ladder take under two minutes), or stands still at speed 0 and moves only when a test
 * calls `advance`. Everything QuickBooks schedules (aggregation windows, retries, token expiry,
 * CDC look-back) runs on this clock; HTTP timeouts and API rate limits stay in real time.
 */
export class SandboxClock {
  #speed: number;
  #baseReal = performance.now();
  #baseSandbox: number;
  #timers: Timer[] = [];
  #sequence = 0;
  #handle: NodeJS.Timeout | undefined;

  readonly #onError: (err: unknown) => void;

  /** `onError` hears what a timer's callback threw; by default it is rethrown, crashing loudly. */
  constructor(options: { start?: number; speed?: number; onError?: (err: unknown) => void } = {}) {
    this.#baseSandbox = options.start ?? Date.now();
    this.#speed = options.speed ?? 1;
    this.#onError =
      options.onError ??
      ((err) =>
        queueMicrotask(() => {
          throw err;
        }));
  }

  /**
   * Sandbox time, in whole milliseconds since the epoch, as QuickBooks keeps its times: a connection
   * made in the same millisecond as a change is not later than it.
   */
  now(): number {
    return Math.floor(this.#baseSandbox + (performance.now() - this.#baseReal) * this.#speed);
  }

  get speed(): number {
    return this.#speed;
  }

  setSpeed(speed: number): void {
    if (!(speed >= 0)) throw new RangeError("speed must be 0 or more");
    this.#rebase();
    this.#speed = speed;
    this.#arm();
  }

  /** Runs `fn` once sandbox time reaches `at`. */
  at(at: number, fn: () => unknown): () => void {
    const timer: Timer = { at, seq: this.#sequence++, fn };
    this.#timers.push(timer);
    this.#timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
    this.#arm();
    return () => {
      this.#timers = this.#timers.filter((t) => t !== timer);
      this.#arm();
    };
  }

  /** Runs `fn` after `ms` of sandbox time. */
  after(ms: number, fn: () => unknown): () => void {
    return this.at(this.now() + ms, fn);
  }

  /**
   * Moves time forward by `ms`, running every timer that falls due in order and waiting for each
   * (deliveries included), so a test sees the state after the step.
   */
  async advance(ms: number): Promise<void> {
    const target = this.now() + ms;
    for (let next = this.#timers[0]; next && next.at <= target; next = this.#timers[0]) {
      this.#timers.shift();
      this.#setNow(Math.max(next.at, this.now()));
      await next.fn();
    }
    this.#setNow(Math.max(target, this.now()));
    this.#arm();
  }

  /** Cancels every timer; the clock is unusable for scheduling afterwards. */
  stop(): void {
    this.#timers = [];
    clearTimeout(this.#handle);
  }

  #rebase(): void {
    this.#baseSandbox = this.now();
    this.#baseReal = performance.now();
  }

  #setNow(sandbox: number): void {
    this.#baseSandbox = sandbox;
    this.#baseReal = performance.now();
  }

  #arm(): void {
    clearTimeout(this.#handle);
    const next = this.#timers[0];
    if (!next || this.#speed === 0) return;
    const delay = Math.max(0, (next.at - this.now()) / this.#speed);
    this.#handle = setTimeout(() => this.#fireDue(), Math.min(delay, 2 ** 31 - 1));
    this.#handle.unref();
  }

  #fireDue(): void {
    const now = this.now();
    while (this.#timers[0] && this.#timers[0].at <= now) {
      const timer = this.#timers.shift() as Timer;
      void Promise.resolve().then(timer.fn).catch(this.#onError);
    }
    this.#arm();
  }
}

interface Timer {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => unknown;
}
