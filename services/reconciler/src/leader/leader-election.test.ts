import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import { Buckets } from "@qbo-webhooks/contracts";
import { NatsClient, openBucket } from "@qbo-webhooks/messaging";
import { NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import { createLogger } from "@qbo-webhooks/observability";
import express from "express";
import { type LockSource, leaderLockContract } from "../testing/leader-lock-contract.js";
import { KubernetesLeaseLock } from "./kubernetes-lease-lock.js";
import { KvLeaderLock } from "./kv-leader-lock.js";

const logger = createLogger({ service: "leader-test", level: "silent" });

/**
 * The leader-lock contract on the NATS KV lock and on the Kubernetes Lease lock against a stand-in
 * for the API server's Lease endpoints. test/deploy's lease.test.ts runs it on a real kube-apiserver.
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
for (const [name, open] of sources) leaderLockContract(name, open, logger);

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
