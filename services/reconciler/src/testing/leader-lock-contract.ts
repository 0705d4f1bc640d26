import type { Logger } from "@qbo-webhooks/observability";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { LeaderElector } from "../leader/leader-elector.js";
import type { LeaderLock } from "../leader/leader-lock.js";

export { KubernetesLeaseLock } from "../leader/kubernetes-lease-lock.js";

const timing = { leaseMs: 1500, renewDeadlineMs: 1000, retryMs: 100 };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A lock whose holder can be "paused": its calls hang, as in a GC pause or SIGSTOP. */
class PausableLock implements LeaderLock {
  paused = false;
  constructor(private readonly inner: LeaderLock) {}
  get description() {
    return this.inner.description;
  }
  async read() {
    while (this.paused) await sleep(20);
    return this.inner.read();
  }
  async write(...args: Parameters<LeaderLock["write"]>) {
    while (this.paused) await sleep(20);
    return this.inner.write(...args);
  }
}

/** Where the contract's locks come from: one lock per candidate on the record `name`. */
export interface LockSource {
  /** A lock on the record called `name` (letters, digits and dashes). */
  lock(name: string): Promise<LeaderLock>;
  close(): Promise<void>;
}

/**
 * The contract every leader lock meets, as vitest tests: one leader among three candidates, an
 * immediate handover with a higher epoch, and a paused leader that stops acting before another
 * starts. The reconciler's tests run it on the NATS KV lock and on a stand-in for the Lease
 * endpoints; test/deploy runs it on a real kube-apiserver with the chart's reconciler RBAC.
 */
export function leaderLockContract(description: string, open: () => Promise<LockSource>, logger: Logger): void {
  describe(`leader election on ${description}`, () => {
    let source: LockSource;
    const electors: LeaderElector[] = [];
    // Opening may start a control plane and install the chart: minutes on a busy 2-core machine.
    beforeAll(async () => {
      source = await open();
    }, 180_000);
    // Each test's candidates stop when it ends, so that tests may share one lock record (a Lease
    // that RBAC names) and start from a released lock.
    afterEach(async () => {
      for (const elector of electors.splice(0)) await elector.stop();
    });
    afterAll(async () => source?.close());

    async function candidates(name: string, count: number) {
      const locks = await Promise.all(
        Array.from({ length: count }, async () => new PausableLock(await source.lock(name))),
      );
      const log: string[] = [];
      const made = locks.map((lock, i) => {
        const elector = new LeaderElector(
          lock,
          `r${i}`,
          timing,
          {
            started: () => log.push(`start r${i}`),
            stopped: () => log.push(`stop r${i}`),
          },
          logger,
        );
        electors.push(elector);
        elector.start();
        return elector;
      });
      return { electors: made, locks, log };
    }

    it("leader - exactly one of three candidates leads", async () => {
      const { electors: three } = await candidates("leader-one", 3);
      await expect.poll(() => three.filter((e) => e.isLeader()).length, { timeout: 5000 }).toBe(1);
      for (let i = 0; i < 20; i++) {
        expect(three.filter((e) => e.isLeader()).length).toBeLessThanOrEqual(1);
        await sleep(50);
      }
    });

    it("leader - a stopped leader hands over at once; a new leader gets a higher epoch", async () => {
      const { electors: two } = await candidates("leader-handover", 2);
      await expect.poll(() => two.some((e) => e.isLeader()), { timeout: 5000 }).toBe(true);
      const leader = two.find((e) => e.isLeader()) as LeaderElector;
      const other = two.find((e) => e !== leader) as LeaderElector;
      const epoch = leader.epoch;
      await leader.stop();
      await expect.poll(() => other.isLeader(), { timeout: 2000 }).toBe(true);
      expect(other.epoch).toBeGreaterThan(epoch);
    });

    it("leader - a paused leader stops acting before another can take over, and the other takes over", async () => {
      const { electors: two, locks, log } = await candidates("leader-pause", 2);
      await expect.poll(() => two.some((e) => e.isLeader()), { timeout: 5000 }).toBe(true);
      const index = two.findIndex((e) => e.isLeader());
      const leader = two[index] as LeaderElector;
      const other = two[1 - index] as LeaderElector;
      (locks[index] as PausableLock).paused = true;
      // Sampled every 20 ms: the two never lead at once.
      const until = performance.now() + timing.leaseMs * 2.5;
      while (performance.now() < until) {
        expect(leader.isLeader() && other.isLeader()).toBe(false);
        await sleep(20);
      }
      expect(other.isLeader()).toBe(true);
      expect(log.indexOf(`stop r${index}`)).toBeLessThan(log.indexOf(`start r${1 - index}`));
      (locks[index] as PausableLock).paused = false;
    });
  });
}
