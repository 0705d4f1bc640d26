import { Buckets } from "@qbo-webhooks/contracts";
import { NatsClient, openBucket } from "@qbo-webhooks/messaging";
import { NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import { createLogger } from "@qbo-webhooks/observability";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvLeaderLock } from "./kv-leader-lock.js";
import { LeaderElector } from "./leader-elector.js";
import type { LeaderLock } from "./leader-lock.js";

const logger = createLogger({ service: "leader-test", level: "silent" });
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

/**
 * The contract every leader lock meets: the Kubernetes Lease lock runs the same suite when a
 * cluster is reachable (KUBECONFIG set); here it runs on the NATS KV lock.
 */
describe("leader election on the NATS KV lock", () => {
  let nats: NatsServerProcess;
  let client: NatsClient;
  const electors: LeaderElector[] = [];
  beforeAll(async () => {
    nats = await NatsServerProcess.start();
    client = await NatsClient.connect({ servers: [nats.url], name: "leader-test", logger });
  });
  afterAll(async () => {
    for (const elector of electors) await elector.stop();
    await client?.drain();
    await nats?.dispose();
  });

  async function candidates(key: string, count: number) {
    const kv = await openBucket(client, Buckets.leases, { replicas: 1 });
    const locks = Array.from({ length: count }, () => new PausableLock(new KvLeaderLock(kv, key)));
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
    const { electors: three } = await candidates("leader.one", 3);
    await expect.poll(() => three.filter((e) => e.isLeader()).length, { timeout: 5000 }).toBe(1);
    for (let i = 0; i < 20; i++) {
      expect(three.filter((e) => e.isLeader()).length).toBeLessThanOrEqual(1);
      await sleep(50);
    }
  });

  it("leader - a stopped leader hands over at once; a new leader gets a higher epoch", async () => {
    const { electors: two } = await candidates("leader.handover", 2);
    await expect.poll(() => two.some((e) => e.isLeader()), { timeout: 5000 }).toBe(true);
    const leader = two.find((e) => e.isLeader()) as LeaderElector;
    const other = two.find((e) => e !== leader) as LeaderElector;
    const epoch = leader.epoch;
    await leader.stop();
    await expect.poll(() => other.isLeader(), { timeout: 2000 }).toBe(true);
    expect(other.epoch).toBeGreaterThan(epoch);
  });

  it("leader - a paused leader stops acting before another can take over, and the other takes over", async () => {
    const { electors: two, locks, log } = await candidates("leader.pause", 2);
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
