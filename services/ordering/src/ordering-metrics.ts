import { Counter, type Registry } from "prom-client";

/** What happened to an event; a label value of `qbo_ordering_events_total` (../shared/DESIGN.md). */
export type OrderingResult = "published" | "duplicate" | "stale" | "invalid";

export interface OrderingMetrics {
  readonly events: Counter<"result">;
}

export function createOrderingMetrics(registry: Registry): OrderingMetrics {
  return {
    events: new Counter({
      name: "qbo_ordering_events_total",
      help: "Change events split from notifications, by what ordering did with them.",
      labelNames: ["result"],
      registers: [registry],
    }),
  };
}
