import { once } from "node:events";
import { createServer, type Server } from "node:http";
import { setTimeout as delay } from "node:timers/promises";
import { Streams } from "@qbo-webhooks/contracts";
import { backoffMs, ensureStream, NatsClient } from "@qbo-webhooks/messaging";
import { createMetricsRegistry, createOpsServer, type Logger } from "@qbo-webhooks/observability";
import { listen } from "@qbo-webhooks/service-kit";
import type { Registry } from "prom-client";
import { createRequestListener } from "./app.js";
import type { IngressConfig } from "./config.js";
import { createIngressMetrics } from "./ingress-metrics.js";

export interface IngressService {
  /** The public port (the webhook), useful with port 0. */
  readonly port: number;
  /** Where `/healthz`, `/readyz` and `/metrics` are served. */
  readonly opsPort: number;
  readonly registry: Registry;
  /** Resolves once NATS is connected and the streams are declared. */
  readonly ready: Promise<void>;
  isReady(): boolean;
  /** Stops intake, lets in-flight requests finish, then drains NATS. */
  close(): Promise<void>;
}

/**
 * Starts the ingress: the HTTP server first (so liveness holds and webhooks get a clean 503 while
 * NATS is unreachable), then NATS and the streams in the background.
 */
export async function startIngress(config: IngressConfig, logger: Logger): Promise<IngressService> {
  const registry = createMetricsRegistry("ingress");
  const metrics = createIngressMetrics(registry);
  let nats: NatsClient | undefined;
  let streamsReady = false;
  let closing = false;
  const isReady = () => !closing && streamsReady && nats?.connected === true;

  const requestListener = createRequestListener({
    verifierTokens: config.verifierTokens,
    publishTimeoutMs: config.publishTimeoutMs,
    maxBodyBytes: config.maxBodyBytes,
    nats: () => (streamsReady ? nats : undefined),
    metrics,
    logger,
    isClosing: () => closing,
  });
  const server: Server = createServer(requestListener);
  // QuickBooks must have its answer within 3 s; a client this slow to send a body is not QuickBooks.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  // Longer than common load balancers' idle timeout (60 s), so they close first and never reuse a dead socket.
  server.keepAliveTimeout = 65_000;
  const port = await listen(server, config.http);
  const opsServer = createOpsServer({ registry, isReady, natsConnected: () => nats?.connected === true });
  const opsPort = await listen(opsServer, config.ops);
  logger.info({ port, opsPort, verifierTokens: config.verifierTokens.length }, "ingress listening");

  const declareStreams = async (client: NatsClient) => {
    const placement = { replicas: config.streamReplicas };
    await ensureStream(client.jsm, Streams.webhooks, placement, { logger });
    await ensureStream(client.jsm, Streams.dlq, placement, { logger });
  };

  const ready = (async () => {
    const client = await NatsClient.connect({
      servers: config.natsServers,
      ...(config.natsAuth ? { auth: config.natsAuth } : {}),
      name: "qbo-webhooks-ingress",
      logger,
    });
    nats = client;
    if (client.maxPayload < config.maxBodyBytes) {
      logger.error(
        { maxPayload: client.maxPayload, maxBodyBytes: config.maxBodyBytes },
        "nats-server max_payload is below MAX_BODY_BYTES: large notifications will be answered 503; raise max_payload",
      );
    }
    // A server restarted with an empty store has lost the streams; declare them again before accepting work.
    client.onReconnect(() => declareStreams(client));
    // JetStream may still be electing stream leaders while a cluster starts: keep trying, unready meanwhile.
    for (let attempt = 1; !closing; attempt++) {
      try {
        await declareStreams(client);
        streamsReady = true;
        logger.info("ingress ready");
        return;
      } catch (err) {
        logger.error({ err, attempt }, "cannot declare streams yet; retrying");
        await delay(backoffMs(attempt, 250, 5_000));
      }
    }
  })();
  ready.catch((err: unknown) => logger.fatal({ err }, "ingress could not reach NATS"));

  return {
    port,
    opsPort,
    registry,
    ready,
    isReady,
    close: async () => {
      closing = true;
      const closed = once(server, "close");
      server.close();
      // Connections that finish their request after close() stay open as keep-alive until swept.
      const sweep = setInterval(() => server.closeIdleConnections(), 100);
      server.closeIdleConnections();
      await closed;
      clearInterval(sweep);
      await nats?.drain();
      opsServer.close();
      opsServer.closeAllConnections();
    },
  };
}
