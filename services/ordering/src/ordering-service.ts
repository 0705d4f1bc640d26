import { once } from "node:events";
import { Buckets, Consumers, PARTITIONS_METADATA, Streams } from "@qbo-webhooks/contracts";
import { EntityVersions } from "@qbo-webhooks/entity-store";
import { DurableConsumer, ensureStream, NatsClient, openBucket } from "@qbo-webhooks/messaging";
import { createMetricsRegistry, createOpsServer, type Logger } from "@qbo-webhooks/observability";
import { listen } from "@qbo-webhooks/service-kit";
import type { Registry } from "prom-client";
import type { OrderingConfig } from "./config.js";
import { createNotificationHandler } from "./order-notification.js";
import { createOrderingMetrics } from "./ordering-metrics.js";

export interface OrderingService {
  /** Where `/healthz`, `/readyz` and `/metrics` are served. */
  readonly opsPort: number;
  readonly registry: Registry;
  isReady(): boolean;
  close(): Promise<void>;
}

/** Connects, declares what ordering reads and writes, and consumes QBO_WEBHOOKS until closed. */
export async function startOrdering(config: OrderingConfig, logger: Logger): Promise<OrderingService> {
  const registry = createMetricsRegistry("ordering");
  const metrics = createOrderingMetrics(registry);
  let consumer: DurableConsumer | undefined;
  let closing = false;

  // The port first: a taken one ends the start before anything connects.
  let client: NatsClient | undefined;
  const natsConnected = () => client?.connected ?? false;
  const isReady = () => !closing && consumer !== undefined && natsConnected();
  const server = createOpsServer({ registry, isReady, natsConnected });
  const opsPort = await listen(server, config.ops);
  client = await NatsClient.connect({
    servers: config.natsServers,
    ...(config.natsAuth ? { auth: config.natsAuth } : {}),
    name: "qbo-webhooks-ordering",
    logger,
  });

  const placement = { replicas: config.streamReplicas };
  const declare = async () => {
    for (const spec of [Streams.webhooks, Streams.dlq]) await ensureStream(client.jsm, spec, placement, { logger });
    await ensureStream(client.jsm, Streams.events, placement, {
      pins: { [PARTITIONS_METADATA]: String(config.partitions) },
      logger,
    });
  };
  await declare();
  client.onReconnect(declare);
  const versions = new EntityVersions(await openBucket(client, Buckets.entityVersions, placement));
  consumer = await DurableConsumer.start(client, {
    stream: Streams.webhooks.name,
    durable: Consumers.ordering,
    ackWaitMs: 30_000,
    logger,
    handle: createNotificationHandler({
      client,
      versions,
      partitions: config.partitions,
      maxAttempts: config.maxAttempts,
      metrics,
      logger,
    }),
  });
  logger.info({ partitions: config.partitions }, "ordering ready");

  return {
    opsPort,
    registry,
    isReady,
    close: async () => {
      closing = true;
      await consumer?.stop();
      await client.drain();
      const closed = once(server, "close");
      server.close();
      server.closeAllConnections();
      await closed;
    },
  };
}
