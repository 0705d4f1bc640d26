import { createHmac } from "node:crypto";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { type BucketName, Buckets, Streams } from "@qbo-webhooks/contracts";
import { EntityStore, EntityVersions, RealmRegistry } from "@qbo-webhooks/entity-store";
import { ensureStream, NatsClient, openBucket } from "@qbo-webhooks/messaging";
import { createMetricsRegistry, handleOpsRequest, type Logger } from "@qbo-webhooks/observability";
import { connectQuickBooks } from "@qbo-webhooks/quickbooks";
import express from "express";
import type { Registry } from "prom-client";
import type { ReconcilerConfig } from "./config.js";
import { connectRoutes } from "./connect-routes.js";
import { ControlLoops } from "./control-loops.js";
import { KubernetesLeaseLock } from "./leader/kubernetes-lease-lock.js";
import { KvLeaderLock } from "./leader/kv-leader-lock.js";
import { LeaderElector } from "./leader/leader-elector.js";
import type { LeaderLock } from "./leader/leader-lock.js";
import { createReconcilerMetrics } from "./reconciler-metrics.js";

export interface ReconcilerService {
  readonly port: number;
  readonly registry: Registry;
  isLeader(): boolean;
  isReady(): boolean;
  close(): Promise<void>;
}

export interface ReconcilerOptions {
  /** The clock QuickBooks' times are compared with; tests pass the sandbox's scaled clock. */
  readonly now?: () => number;
  /** Where leadership is recorded, instead of the one `config.leader` names. */
  readonly lock?: LeaderLock;
  /** Rows per page of full listings (QuickBooks' 1,000 by default); tests page small sets. */
  readonly queryPageSize?: number;
}

/**
 * A reconciler replica: serves the connect flow and the ops endpoints on every replica, and runs
 * the control loops only while it is the elected leader.
 */
export async function startReconciler(
  config: ReconcilerConfig,
  logger: Logger,
  options: ReconcilerOptions = {},
): Promise<ReconcilerService> {
  const now = options.now ?? Date.now;
  const registry = createMetricsRegistry("reconciler");
  const metrics = createReconcilerMetrics(registry);
  const client = await NatsClient.connect({
    servers: config.natsServers,
    name: `qbo-webhooks-reconciler-${config.reconcilerId}`,
    logger,
  });
  const placement = { replicas: config.streamReplicas };
  const declare = async () => {
    for (const spec of Object.values(Streams)) await ensureStream(client.jsm, spec, placement, { logger });
  };
  await declare();
  client.onReconnect(declare);
  const bucket = (name: BucketName) => openBucket(client, name, placement);

  const { tokens, quickbooks, oauth } = connectQuickBooks(
    config,
    { tokens: await bucket(Buckets.tokens), rateLimits: await bucket(Buckets.rateLimits) },
    { logger, registry, now, ...(options.queryPageSize === undefined ? {} : { queryPageSize: options.queryPageSize }) },
  );
  const realms = new RealmRegistry(await bucket(Buckets.realms));
  const store = new EntityStore(await bucket(Buckets.entities), await bucket(Buckets.watermarks));
  const versions = new EntityVersions(await bucket(Buckets.entityVersions));

  let closing = false;
  const isReady = () => !closing && client.connected;
  const app = express();
  app.disable("x-powered-by");
  app.use((req, res, next) => {
    if (!handleOpsRequest({ registry, isReady }, req, res)) next();
  });
  app.use(
    connectRoutes({
      oauth,
      authorizeUrl: config.authorizeUrl,
      redirectUri: config.redirectUri,
      environment: config.environment,
      entities: config.entities,
      stateKey: createHmac("sha256", config.tokenKey).update("oauth-state").digest(),
      tokens,
      registry: realms,
      logger,
      now,
    }),
  );
  const server = app.listen(config.httpPort);
  await once(server, "listening");

  let elector: LeaderElector | undefined;
  const loops = new ControlLoops(
    {
      client,
      quickbooks,
      store,
      versions,
      registry: realms,
      tokens,
      metrics,
      logger,
      now,
      missedGraceMs: config.missedGraceMs,
      stillLeader: () => elector?.isLeader() === true && !closing,
    },
    {
      intervalMs: config.loopIntervalMs,
      tokenRefreshAheadMs: config.tokenRefreshAheadMs,
      silenceMs: config.silenceMs,
      silenceMinMs: config.silenceMinMs,
      dailyCdc: config.dailyCdc,
      cdcConcurrency: config.cdcConcurrency,
    },
  );
  const lock =
    options.lock ??
    (config.leader.mode === "kubernetes"
      ? new KubernetesLeaseLock(config.leader.leaseName, config.leader.namespace)
      : new KvLeaderLock(await bucket(Buckets.leases)));
  elector = new LeaderElector(
    lock,
    config.reconcilerId,
    config.leader,
    {
      started: (epoch, signal) => {
        metrics.leader.set(1);
        logger.info({ epoch, reconcilerId: config.reconcilerId }, "leading: control loops start");
        loops.start(signal).catch((err: unknown) => logger.error({ err }, "control loops did not start"));
      },
      stopped: () => {
        metrics.leader.set(0);
      },
    },
    logger,
  );
  elector.start();
  logger.info({ reconcilerId: config.reconcilerId, lock: lock.description }, "reconciler started");

  return {
    port: (server.address() as AddressInfo).port,
    registry,
    isLeader: () => elector?.isLeader() === true,
    isReady,
    close: async () => {
      closing = true;
      const closed = once(server, "close");
      server.close();
      server.closeAllConnections();
      await loops.stop();
      await elector?.stop();
      await client.drain();
      await closed;
    },
  };
}
