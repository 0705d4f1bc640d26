import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { Buckets, Streams } from "@qbo-webhooks/contracts";
import { EntityStore } from "@qbo-webhooks/entity-store";
import { ensureStream, NatsClient, openBucket } from "@qbo-webhooks/messaging";
import { createMetricsRegistry, createOpsServer, type Logger } from "@qbo-webhooks/observability";
import { connectQuickBooks } from "@qbo-webhooks/quickbooks";
import pLimit from "p-limit";
import type { Registry } from "prom-client";
import { ChangeDelivery } from "./change-delivery.js";
import type { ProcessorConfig } from "./config.js";
import { PartitionLeases } from "./partition-leases.js";
import { PartitionWorker } from "./partition-worker.js";
import { createProcessorMetrics } from "./processor-metrics.js";
import type { ProcessorHooks } from "./realm-batch.js";

export interface ProcessorService {
  readonly port: number;
  readonly registry: Registry;
  /** Partitions this replica holds now. */
  owned(): number[];
  isReady(): boolean;
  close(): Promise<void>;
}

/** A processor replica: takes its share of the partitions and applies their events. */
export async function startProcessor(
  config: ProcessorConfig,
  logger: Logger,
  hooks?: ProcessorHooks,
): Promise<ProcessorService> {
  const registry = createMetricsRegistry("processor");
  const metrics = createProcessorMetrics(registry);
  const client = await NatsClient.connect({
    servers: config.natsServers,
    name: `qbo-webhooks-processor-${config.processorId}`,
    logger,
  });
  let closing = false;
  const isReady = () => !closing && client.connected;
  const server = createOpsServer({ registry, isReady }).listen(config.httpPort);
  await once(server, "listening");

  const placement = { replicas: config.streamReplicas };
  const declare = async () => {
    for (const spec of [Streams.events, Streams.changes, Streams.dlq]) await ensureStream(client.jsm, spec, placement);
  };
  await declare();
  client.onReconnect(declare);
  const bucket = (name: string) => openBucket(client, name, placement);
  const { quickbooks } = connectQuickBooks(
    config,
    { tokens: await bucket(Buckets.tokens), rateLimits: await bucket(Buckets.rateLimits) },
    { logger, registry, throttleWaitMs: config.throttleWaitMs },
  );
  const store = new EntityStore(await bucket(Buckets.entities), await bucket(Buckets.watermarks));

  const batchSlots = pLimit(config.maxConcurrentRealms);
  const workers = new Map<number, PartitionWorker>();
  const leases: PartitionLeases = new PartitionLeases(
    await bucket(Buckets.leases),
    { owner: config.processorId, partitions: config.partitions, ttlMs: config.leaseTtlMs, logger },
    {
      acquired: async (partition) => {
        workers.set(
          partition,
          await PartitionWorker.start(partition, {
            client,
            quickbooks,
            store,
            metrics,
            logger,
            maxAttempts: config.maxAttempts,
            fetchStrategy: config.fetchStrategy,
            retryBaseMs: config.retryBaseMs,
            coalesceMs: config.coalesceMs,
            batchSlots,
            ...(hooks ? { hooks } : {}),
            stillOwner: (p) => leases.isValid(p),
          }),
        );
        metrics.partitionsOwned.set(workers.size);
      },
      released: async (partition) => {
        const worker = workers.get(partition);
        workers.delete(partition);
        metrics.partitionsOwned.set(workers.size);
        await worker?.stop();
      },
    },
  );
  leases.start();
  const delivery =
    config.delivery &&
    (await ChangeDelivery.start({
      client,
      ...config.delivery,
      maxAttempts: config.maxAttempts,
      retryBaseMs: config.retryBaseMs,
      registry,
      logger,
    }));
  logger.info({ processorId: config.processorId, partitions: config.partitions }, "processor started");

  return {
    port: (server.address() as AddressInfo).port,
    registry,
    owned: () => leases.owned(),
    isReady,
    close: async () => {
      closing = true;
      await delivery?.stop();
      await leases.stop();
      await client.drain();
      const closed = once(server, "close");
      server.close();
      server.closeAllConnections();
      await closed;
    },
  };
}
