import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** Label values of `qbo_processor_events_total` (../shared/DESIGN.md). */
export type ProcessorResult = "applied" | "stale" | "deleted" | "failed" | "dead_lettered";

export interface ProcessorMetrics {
  readonly events: Counter<"result">;
  readonly freshness: Histogram;
  readonly partitionsOwned: Gauge;
}

export function createProcessorMetrics(registry: Registry): ProcessorMetrics {
  return {
    events: new Counter({
      name: "qbo_processor_events_total",
      help: "Change events handled by the processor, by result.",
      labelNames: ["result"],
      registers: [registry],
    }),
    freshness: new Histogram({
      name: "qbo_event_freshness_seconds",
      help: "Time from a change in QuickBooks to its application here.",
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600],
      registers: [registry],
    }),
    partitionsOwned: new Gauge({
      name: "qbo_partitions_owned",
      help: "Partitions this processor replica holds the lease of.",
      registers: [registry],
    }),
  };
}
