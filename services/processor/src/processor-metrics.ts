import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** Label values of `qbo_processor_events_total` (../shared/DESIGN.md). */
export type ProcessorResult = "applied" | "stale" | "deleted" | "failed" | "dead_lettered";

export interface ProcessorMetrics {
  readonly events: Counter<"result">;
  readonly freshness: Histogram;
  readonly partitionsOwned: Gauge;
  /** `qbo_delivery_attempts_total{result}`: delivered, failed, dead_lettered, superseded (a replay out of date). */
  readonly deliveries: Counter<"result">;
  /** Realms whose next change the app has refused at least once and not yet taken. */
  readonly blockedRealms: Gauge;
  /** Events of paused realms this replica holds. */
  readonly heldEvents: Gauge;
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
    deliveries: new Counter({
      name: "qbo_delivery_attempts_total",
      help: "POSTs of applied changes to the app, by result (superseded: a replayed change skipped as out of date).",
      labelNames: ["result"],
      registers: [registry],
    }),
    blockedRealms: new Gauge({
      name: "qbo_delivery_blocked_realms",
      help: "Realms whose next change the app's endpoint is refusing; their later changes wait behind it.",
      registers: [registry],
    }),
    heldEvents: new Gauge({
      name: "qbo_processor_held_events",
      help: "Events of paused companies held by this replica, unapplied, until the company resumes.",
      registers: [registry],
    }),
  };
}
