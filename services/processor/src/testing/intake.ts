import { fileURLToPath } from "node:url";
import { type IngressService, startIngress } from "@qbo-webhooks/ingress/service";
import { testIngressConfig } from "@qbo-webhooks/ingress/testing";
import { freePort } from "@qbo-webhooks/messaging/testing";
import type { Logger } from "@qbo-webhooks/observability";
import { type OrderingService, startOrdering } from "@qbo-webhooks/ordering/service";
import { ServiceProcess } from "./service-process.js";

const INGRESS_MAIN = fileURLToPath(new URL("../../../ingress/dist/ingress.mjs", import.meta.url));
const ORDERING_MAIN = fileURLToPath(new URL("../../../ordering/dist/ordering.mjs", import.meta.url));

export interface IntakeOptions {
  readonly natsServers: readonly string[];
  readonly verifierToken: string;
  readonly partitions: number;
  readonly streamReplicas: number;
}

/** The ingress and ordering in front of the processors, wherever they run. */
export interface Intake {
  readonly ingress: { readonly port: number; readonly opsPort: number };
  readonly ordering: { readonly opsPort: number };
  /** Their processes, when they run as processes of their own (to kill, pause or restart them). */
  readonly processes?: { readonly ingress: ServiceProcess; readonly ordering: ServiceProcess };
  /** An ingress outage: QuickBooks' deliveries fail (connection refused) until `restoreIngress`. */
  stopIngress(): Promise<void>;
  restoreIngress(): Promise<void>;
  close(): Promise<void>;
}

const ORDERING_MAX_ATTEMPTS = 5;

/** Both services in this Node process: quick to start, for tests about what happens after them. */
export async function startIntakeInProcess(options: IntakeOptions, logger: Logger): Promise<Intake> {
  const ingressConfig = (port: number) =>
    testIngressConfig(options.natsServers, [options.verifierToken], {
      http: { port, host: "127.0.0.1" },
      streamReplicas: options.streamReplicas,
    });
  let ingress: IngressService = await startIngress(ingressConfig(0), logger);
  await ingress.ready;
  const port = ingress.port;
  const ordering: OrderingService = await startOrdering(
    {
      natsServers: options.natsServers,
      ops: { port: 0, host: "127.0.0.1" },
      partitions: options.partitions,
      maxAttempts: ORDERING_MAX_ATTEMPTS,
      streamReplicas: options.streamReplicas,
      shutdownDeadlineMs: 8000,
      logLevel: "silent",
      exportTraces: false,
    },
    logger,
  );
  return {
    get ingress() {
      return { port, opsPort: ingress.opsPort };
    },
    ordering,
    stopIngress: () => ingress.close(),
    restoreIngress: async () => {
      ingress = await startIngress(ingressConfig(port), logger);
      await ingress.ready;
    },
    close: async () => {
      await ordering.close();
      await ingress.close();
    },
  };
}

/** Each service a process of its own, started from its bundle as in production: for the fault suite. */
export async function startIntakeProcesses(options: IntakeOptions): Promise<Intake> {
  const common = {
    NATS_URL: options.natsServers.join(","),
    NATS_STREAM_REPLICAS: String(options.streamReplicas),
    LOG_LEVEL: "warn",
  };
  const port = await freePort();
  const ingress = await ServiceProcess.start(
    "ingress",
    INGRESS_MAIN,
    { ...common, HTTP_HOST: "127.0.0.1", HTTP_PORT: String(port), QBO_VERIFIER_TOKENS: options.verifierToken },
    await freePort(),
  );
  const ordering = await ServiceProcess.start(
    "ordering",
    ORDERING_MAIN,
    { ...common, PARTITIONS: String(options.partitions), MAX_ATTEMPTS: String(ORDERING_MAX_ATTEMPTS) },
    await freePort(),
  );
  return {
    ingress: { port, opsPort: ingress.opsPort },
    ordering: { opsPort: ordering.opsPort },
    processes: { ingress, ordering },
    stopIngress: () => ingress.stop(),
    restoreIngress: () => ingress.restart(),
    close: async () => {
      await ordering.stop();
      await ingress.stop();
    },
  };
}
