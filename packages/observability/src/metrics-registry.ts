import { collectDefaultMetrics, Registry } from "prom-client";

/**
 * A registry for one service with Node's process metrics. Each service owns its registry, so tests
 * can run several services in one process without metrics colliding.
 */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}
