import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import { Buckets } from "@qbo-webhooks/contracts";
import { NatsClient, openBucket } from "@qbo-webhooks/messaging";
import { NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import { createLogger } from "@qbo-webhooks/observability";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubernetesLeaseLock } from "./kubernetes-lease-lock.js";
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

interface LockSource {
  /** A lock on the record called `name` (letters, digits and dashes). */
  lock(name: string): Promise<LeaderLock>;
  close(): Promise<void>;
}

/**
 * The contract every leader lock meets, run on the NATS KV lock, on the Kubernetes Lease lock
 * against a stand-in for the API server's Lease endpoints, and on the Kubernetes Lease lock against
 * a real cluster when KUBECONFIG names one.
 */
const sources: [string, () => Promise<LockSource>][] = [
  [
    "the NATS KV lock",
    async () => {
      const nats = await NatsServerProcess.start();
      const client = await NatsClient.connect({ servers: [nats.url], name: "leader-test", logger });
      const kv = await openBucket(client, Buckets.leases, { replicas: 1 });
      return {
        lock: async (name) => new KvLeaderLock(kv, name),
        close: async () => {
          await client.drain();
          await nats.dispose();
        },
      };
    },
  ],
  [
    "the Kubernetes Lease lock (stand-in API server)",
    async () => {
      const server = await startLeaseApi();
      const config = new KubeConfig();
      config.loadFromOptions({
        clusters: [{ name: "test", server: server.url, skipTLSVerify: true }],
        users: [{ name: "test", token: "test" }],
        contexts: [{ name: "test", cluster: "test", user: "test" }],
        currentContext: "test",
      });
      return { lock: async (name) => new KubernetesLeaseLock(name, "default", config), close: server.close };
    },
  ],
];
if (process.env.KUBECONFIG) {
  sources.push([
    "the Kubernetes Lease lock (KUBECONFIG's cluster)",
    async () => ({
      lock: async (name) =>
        new KubernetesLeaseLock(`qbo-test-${name}-${Date.now()}`, process.env.POD_NAMESPACE ?? "default"),
      close: async () => undefined,
    }),
  ]);
}

describe.each(sources)("leader election on %s", (_name, open) => {
  let source: LockSource;
  const electors: LeaderElector[] = [];
  beforeAll(async () => {
    source = await open();
  });
  afterAll(async () => {
    for (const elector of electors) await elector.stop();
    await source?.close();
  });

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

/**
 * The Lease endpoints of a Kubernetes API server, as far as leader election uses them: read,
 * create (409 when it exists) and replace (409 unless `metadata.resourceVersion` is current).
 */
async function startLeaseApi(): Promise<{ url: string; close: () => Promise<void> }> {
  const leases = new Map<string, Record<string, unknown> & { metadata: Record<string, unknown> }>();
  let version = 0;
  const app = express();
  app.use(express.json());
  const path = "/apis/coordination.k8s.io/v1/namespaces/:namespace/leases";
  const status = (res: express.Response, code: number, reason: string) =>
    res.status(code).json({ kind: "Status", apiVersion: "v1", status: "Failure", reason, code });
  app.get(`${path}/:name`, (req, res) => {
    const lease = leases.get(`${req.params.namespace}/${req.params.name}`);
    if (!lease) return void status(res, 404, "NotFound");
    res.json(lease);
  });
  app.post(path, (req, res) => {
    const key = `${req.params.namespace}/${req.body.metadata.name}`;
    if (leases.has(key)) return void status(res, 409, "AlreadyExists");
    const lease = { ...req.body, metadata: { ...req.body.metadata, resourceVersion: String(++version) } };
    leases.set(key, lease);
    res.status(201).json(lease);
  });
  app.put(`${path}/:name`, (req, res) => {
    const key = `${req.params.namespace}/${req.params.name}`;
    const current = leases.get(key);
    if (!current) return void status(res, 404, "NotFound");
    if (req.body.metadata?.resourceVersion !== current.metadata.resourceVersion)
      return void status(res, 409, "Conflict");
    const lease = { ...req.body, metadata: { ...req.body.metadata, resourceVersion: String(++version) } };
    leases.set(key, lease);
    res.json(lease);
  });
  const server = app.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      server.close();
    },
  };
}
