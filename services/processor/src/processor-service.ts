import { once } from "node:events";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { type BucketName, Buckets, PARTITIONS_METADATA, Streams } from "@qbo-webhooks/contracts";
import { DeferredWatermarks, EntityStore, RealmRegistry } from "@qbo-webhooks/entity-store";
import { ensureStream, NatsClient, openBucket } from "@qbo-webhooks/messaging";
import { createMetricsRegistry, createOpsServer, type Logger } from "@qbo-webhooks/observability";
import { connectQuickBooks, quickbooksEndpoints } from "@qbo-webhooks/quickbooks";
import { listen } from "@qbo-webhooks/service-kit";
import pLimit from "p-limit";
import type { Registry } from "prom-client";
import { Webhook } from "standardwebhooks";
import type { ProcessorConfig } from "./config.js";
import { PartitionLeases } from "./partition-leases.js";
import { PartitionWorker, type WorkerDeps } from "./partition-worker.js";
import { createProcessorMetrics } from "./processor-metrics.js";
import type { ProcessorHooks } from "./realm-batch.js";

export interface ProcessorService {
  /** Where `/healthz`, `/readyz` and `/metrics` are served. */
  readonly opsPort: number;
  readonly registry: Registry;
  /** Partitions this replica holds now. */
  owned(): number[];
  isReady(): boolean;
  close(): Promise<void>;
}

/** POSTs to the app in flight at once per replica, across its partitions. */
const DELIVERY_SLOTS = 32;
/**
 * How often the watermarks moved by realm batches are written: together, each key once, rather
 * than one KV round trip per batch (DeferredWatermarks says what that trades).
 */
const WATERMARK_FLUSH_MS = 2000;

/** A processor replica: takes its share of the partitions, applies their events and delivers their changes. */
export async function startProcessor(
  config: ProcessorConfig,
  logger: Logger,
  hooks?: ProcessorHooks,
): Promise<ProcessorService> {
  const registry = createMetricsRegistry("processor");
  const metrics = createProcessorMetrics(registry);
  // The port first: a taken one ends the start before anything connects.
  let client: NatsClient | undefined;
  let closing = false;
  const natsConnected = () => client?.connected ?? false;
  const isReady = () => !closing && natsConnected();
  const server = createOpsServer({ registry, isReady, natsConnected });
  const opsPort = await listen(server, config.ops);
  client = await NatsClient.connect({
    servers: config.natsServers,
    ...(config.natsAuth ? { auth: config.natsAuth } : {}),
    name: `qbo-webhooks-processor-${config.processorId}`,
    logger,
  });

  const placement = { replicas: config.streamReplicas };
  const declare = async () => {
    await ensureStream(client.jsm, Streams.events, placement, {
      pins: { [PARTITIONS_METADATA]: String(config.partitions) },
      logger,
    });
    for (const spec of [Streams.changes, Streams.deliveries, Streams.dlq])
      await ensureStream(client.jsm, spec, placement, { logger });
  };
  await declare();
  client.onReconnect(declare);
  const bucket = (name: BucketName) => openBucket(client, name, placement);
  const { quickbooks } = connectQuickBooks(
    config,
    { tokens: await bucket(Buckets.tokens), rateLimits: await bucket(Buckets.rateLimits) },
    { logger, registry, throttleWaitMs: config.throttleWaitMs },
  );
  const store = new EntityStore(await bucket(Buckets.entities), await bucket(Buckets.watermarks));
  const watermarks = new DeferredWatermarks(store, WATERMARK_FLUSH_MS, (err, { realmId, entity }) =>
    logger.warn({ err, realmId, entity }, "watermark not written; it is tried again at the next flush"),
  );
  // Which companies are paused: their events are held, unapplied, until they resume.
  const realms = await new RealmRegistry(await bucket(Buckets.realms)).follow();

  const workerDeps: WorkerDeps = {
    client,
    quickbooks,
    store,
    watermarks,
    metrics,
    logger,
    maxAttempts: config.maxAttempts,
    fetchStrategy: config.fetchStrategy,
    retryBaseMs: config.retryBaseMs,
    coalesceMs: config.coalesceMs,
    batchSlots: pLimit(config.maxConcurrentRealms),
    paused: (realmId) => realms.get(realmId)?.paused === true,
    ...(hooks ? { hooks } : {}),
    stillOwner: (p) => leases.isValid(p),
    ...(config.delivery
      ? {
          delivery: {
            target: {
              url: config.delivery.url,
              webhook: new Webhook(config.delivery.secret),
              timeoutMs: config.delivery.timeoutMs,
              retryForMs: config.delivery.retryForMs,
              retryBaseMs: config.retryBaseMs,
              retryCapMs: config.delivery.retryCapMs,
            },
            cursors: await bucket(Buckets.deliveryCursors),
            slots: pLimit(DELIVERY_SLOTS),
          },
        }
      : {}),
  };
  // Deliveries used to come from one consumer of QBO_CHANGES shared by every replica, which let
  // newer versions overtake older ones; a store from that time still has it.
  await client.jsm.consumers.delete(Streams.changes.name, "delivery").catch((err: unknown) => {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound)) throw err;
  });

  const workers = new Map<number, PartitionWorker>();
  // Starting and stopping a partition's work happen one after another per partition, off the
  // lease heartbeat: a slow stop must not delay renewing the other leases.
  const transitions = new Map<number, Promise<void>>();
  const inTurn = (partition: number, step: () => Promise<void>): Promise<void> => {
    const next = (transitions.get(partition) ?? Promise.resolve()).then(step).catch((err: unknown) => {
      logger.error({ err, partition }, "partition work could not start or stop");
    });
    transitions.set(partition, next);
    return next;
  };
  const leases: PartitionLeases = new PartitionLeases(
    await bucket(Buckets.leases),
    { owner: config.processorId, partitions: config.partitions, ttlMs: config.leaseTtlMs, logger },
    {
      acquired: (partition) =>
        void inTurn(partition, async () => {
          if (!leases.isValid(partition)) return;
          try {
            workers.set(partition, await PartitionWorker.start(partition, workerDeps));
            metrics.partitionsOwned.set(workers.size);
          } catch (err) {
            // Nobody would consume it: give it up so this replica or another takes it again.
            logger.error({ err, partition }, "partition work did not start; lease given up");
            await leases.giveUp(partition);
          }
        }),
      released: (partition) =>
        inTurn(partition, async () => {
          const worker = workers.get(partition);
          workers.delete(partition);
          metrics.partitionsOwned.set(workers.size);
          await worker?.stop();
        }),
    },
  );
  await leases.start();
  logger.info(
    { processorId: config.processorId, partitions: config.partitions, quickbooks: quickbooksEndpoints(config) },
    "processor started",
  );

  return {
    opsPort,
    registry,
    owned: () => leases.owned(),
    isReady,
    close: async () => {
      closing = true;
      await leases.stop();
      await watermarks.stop();
      realms.stop();
      await client.drain();
      const closed = once(server, "close");
      server.close();
      server.closeAllConnections();
      await closed;
    },
  };
}
