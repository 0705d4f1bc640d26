import { collectDefaultMetrics, Gauge, Registry } from "prom-client";
import { VERSION } from "./version.js";

/**
 * A registry for one service with Node's process metrics and `qbo_build_info`. Each service owns its
 * registry, so tests can run several services in one process without metrics colliding.
 */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: "qbo_build_info",
    help: "Always 1; the version label says which release of qbo-webhooks runs.",
    labelNames: ["version"],
    registers: [registry],
  }).set({ version: VERSION }, 1);
  return registry;
}
