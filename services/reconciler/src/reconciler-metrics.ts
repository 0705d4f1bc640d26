import { Counter, Gauge, type Registry } from "prom-client";

export interface ReconcilerMetrics {
  readonly cdcRuns: Counter<"result">;
  readonly missed: Counter;
  readonly repairs: Counter;
  readonly cdcLag: Gauge;
  readonly consumerPending: Gauge<"stream" | "consumer">;
  readonly dlqMessages: Gauge<"stage">;
  readonly streamFill: Gauge<"stream">;
  readonly oldestUnprocessed: Gauge<"stream">;
  readonly realms: Gauge<"status">;
  readonly tokenRefreshes: Counter<"result">;
  readonly leader: Gauge;
  readonly clientRefused: Gauge;
  /** `qbo_company_status_writes_total{result}`: written, conflict (409, read again), deferred (rate limit). */
  readonly statusWrites: Counter<"result">;
}

/** The reconciler's metrics (../shared/DESIGN.md); per-realm detail lives in KV `qbo-realms`, not in labels. */
export function createReconcilerMetrics(registry: Registry): ReconcilerMetrics {
  const registers = [registry];
  return {
    cdcRuns: new Counter({
      name: "qbo_cdc_runs_total",
      help: "CDC runs per realm, by result (succeeded, failed).",
      labelNames: ["result"],
      registers,
    }),
    missed: new Counter({
      name: "qbo_cdc_missed_events_total",
      help: "Changes CDC found that no webhook had announced: rising means webhooks fail outside our view.",
      registers,
    }),
    repairs: new Counter({
      name: "qbo_cdc_repairs_total",
      help: "Entities whose copy differed from QuickBooks' and was repaired by a daily CDC or a resync.",
      registers,
    }),
    cdcLag: new Gauge({
      name: "qbo_cdc_lag_seconds",
      help: "Now minus the oldest verified point over connected realms.",
      registers,
    }),
    consumerPending: new Gauge({
      name: "qbo_consumer_pending",
      help: "Messages not yet delivered or not yet acked, per stream and durable consumer.",
      labelNames: ["stream", "consumer"],
      registers,
    }),
    dlqMessages: new Gauge({
      name: "qbo_dlq_messages",
      help: "Dead letters waiting in QBO_DLQ, by the stage that dead-lettered them (ingress, ordering, processor, delivery).",
      labelNames: ["stage"],
      registers,
    }),
    streamFill: new Gauge({
      name: "qbo_stream_fill_ratio",
      help: "Bytes stored over the stream's byte limit; at 1 a work stream refuses new messages (the ingress answers 503).",
      labelNames: ["stream"],
      registers,
    }),
    oldestUnprocessed: new Gauge({
      name: "qbo_stream_oldest_unprocessed_seconds",
      help: "Age of the oldest message waiting in a work stream (QBO_WEBHOOKS, QBO_EVENTS); nothing there expires.",
      labelNames: ["stream"],
      registers,
    }),
    realms: new Gauge({
      name: "qbo_realms",
      help: "Companies by status (connected, disconnected, awaiting_consent).",
      labelNames: ["status"],
      registers,
    }),
    tokenRefreshes: new Counter({
      name: "qbo_token_refreshes_total",
      help: "Token refreshes by this replica, by result (refreshed, refused: invalid_grant, client_refused: invalid_client, failed).",
      labelNames: ["result"],
      registers,
    }),
    statusWrites: new Counter({
      name: "qbo_company_status_writes_total",
      help: "Status writes to QuickBooksCompany resources, by result (written, conflict: read again and retried, deferred: held back by the rate limit).",
      labelNames: ["result"],
      registers,
    }),
    leader: new Gauge({ name: "qbo_reconciler_leader", help: "1 while this replica leads.", registers }),
    clientRefused: new Gauge({
      name: "qbo_oauth_client_refused",
      help: "1 while QuickBooks refuses our client id or secret (invalid_client): no token can be refreshed until it is fixed.",
      registers,
    }),
  };
}
