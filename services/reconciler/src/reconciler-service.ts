import { createHmac } from "node:crypto";
import { once } from "node:events";
import { createServer } from "node:http";
import type { KubeConfig } from "@kubernetes/client-node";
import { type BucketName, Buckets, Streams } from "@qbo-webhooks/contracts";
import { EntityStore, EntityVersions, RealmRegistry } from "@qbo-webhooks/entity-store";
import { ensureStream, NatsClient, openBucket } from "@qbo-webhooks/messaging";
import { createMetricsRegistry, exportReadiness, handleOpsRequest, type Logger } from "@qbo-webhooks/observability";
import { connectQuickBooks, quickbooksEndpoints } from "@qbo-webhooks/quickbooks";
import { listen } from "@qbo-webhooks/service-kit";
import express from "express";
import type { Registry } from "prom-client";
import type { ReconcilerConfig } from "./config.js";
import { ConnectFlows } from "./connect-flows.js";
import { type ConnectSettings, callbackRoute, connectRoute } from "./connect-routes.js";
import { ControlLoops } from "./control-loops.js";
import { defaultKubeConfig, KubernetesLeaseLock } from "./leader/kubernetes-lease-lock.js";
import { KvLeaderLock } from "./leader/kv-leader-lock.js";
import { LeaderElector } from "./leader/leader-elector.js";
import type { LeaderLock } from "./leader/leader-lock.js";
import { CompanyOperator } from "./operator/company-operator.js";
import { createReconcilerMetrics } from "./reconciler-metrics.js";

export interface ReconcilerService {
  /** The public port: `/oauth/callback`. */
  readonly port: number;
  /** `/healthz`, `/readyz`, `/metrics` and the operators' `/connect`. */
  readonly opsPort: number;
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
  /** The Kubernetes API for company resources; in a pod, the service account's (the default). */
  readonly kubeConfig?: KubeConfig;
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
  let closing = false;
  let clientProblem: string | undefined;
  // The ports first: a taken one ends the start before anything connects. Their routes need NATS,
  // so they join once it is there; meanwhile the ops port answers health, and the rest 503.
  let client: NatsClient | undefined;
  let routes: { public: express.Router; ops: express.Router } | undefined;
  const natsConnected = () => client?.connected ?? false;
  const isReady = () => !closing && routes !== undefined && natsConnected();
  const starting: express.RequestHandler = (_req, res) =>
    void res.status(503).set("retry-after", "1").json({ error: "starting, retry shortly" });
  // The public port: only where Intuit sends the browser back.
  const publicApp = express();
  publicApp.disable("x-powered-by");
  publicApp.use((req, res, next) => (routes ? routes.public(req, res, next) : starting(req, res, next)));
  const server = createServer(publicApp);
  const port = await listen(server, config.http);
  // The ops port: health, metrics, and the operators' /connect.
  const opsApp = express();
  opsApp.disable("x-powered-by");
  const ops = exportReadiness({
    registry,
    isReady,
    natsConnected,
    problems: () => (clientProblem ? [clientProblem] : []),
  });
  opsApp.use((req, res, next) => {
    if (!handleOpsRequest(ops, req, res)) next();
  });
  opsApp.use((req, res, next) => (routes ? routes.ops(req, res, next) : starting(req, res, next)));
  const opsServer = createServer(opsApp);
  const opsPort = await listen(opsServer, config.ops);

  client = await NatsClient.connect({
    servers: config.natsServers,
    ...(config.natsAuth ? { auth: config.natsAuth } : {}),
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

  const connect: ConnectSettings = {
    oauth,
    authorizeUrl: config.authorizeUrl,
    apiBaseUrl: config.apiBaseUrl,
    redirectUri: config.redirectUri,
    environment: config.environment,
    entities: config.entities,
    operatorToken: config.operatorToken,
    flows: new ConnectFlows(
      await bucket(Buckets.connectFlows),
      createHmac("sha256", config.tokenKey).update("oauth-state").digest(),
    ),
    tokens,
    registry: realms,
    logger,
    now,
  };
  routes = { public: callbackRoute(connect), ops: connectRoute(connect) };

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
      clientRefused: (problem) => {
        clientProblem = problem && `QuickBooks refuses our client credentials: ${problem}`;
        metrics.clientRefused.set(problem ? 1 : 0);
      },
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
  const operator =
    config.companyResources &&
    new CompanyOperator(
      {
        kubeConfig: options.kubeConfig ?? defaultKubeConfig(),
        registry: realms,
        tokens,
        client,
        metrics,
        logger,
        now,
        reconcilerId: config.reconcilerId,
        stillLeader: () => elector?.isLeader() === true && !closing,
      },
      {
        ...config.companyResources,
        environment: config.environment,
        entities: config.entities,
        silenceMs: config.silenceMs,
      },
    );
  const lock =
    options.lock ??
    (config.leader.mode === "kubernetes"
      ? new KubernetesLeaseLock(config.leader.leaseName, config.leader.namespace, options.kubeConfig)
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
        operator?.start(signal).catch((err: unknown) => logger.error({ err }, "company resources not watched"));
      },
      stopped: () => {
        metrics.leader.set(0);
      },
    },
    logger,
  );
  elector.start();
  logger.info(
    { reconcilerId: config.reconcilerId, lock: lock.description, quickbooks: quickbooksEndpoints(config) },
    "reconciler started",
  );

  return {
    port,
    opsPort,
    registry,
    isLeader: () => elector?.isLeader() === true,
    isReady,
    close: async () => {
      closing = true;
      const closed = once(server, "close");
      server.close();
      server.closeAllConnections();
      await loops.stop();
      await operator?.stop();
      await elector?.stop();
      await client.drain();
      await closed;
      opsServer.close();
      opsServer.closeAllConnections();
    },
  };
}
