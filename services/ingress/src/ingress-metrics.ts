import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** Why a request got its answer; a label value of `qbo_webhook_requests_total`. */
export type WebhookReason =
  | "stored"
  | "duplicate"
  | "no_events"
  | "quarantined"
  | "missing_signature"
  | "bad_signature"
  | "too_large"
  | "bad_request"
  | "method_not_allowed"
  | "nats_unavailable"
  | "publish_timeout"
  | "publish_rejected"
  | "stream_full"
  | "publish_forbidden"
  | "shutting_down"
  | "internal_error"
  /** The client hung up before it got an answer. */
  | "client_closed";

/**
 * What QuickBooks saw: accepted (2xx), rejected (4xx: not its delivery, or refused as unsigned or too
 * large), failed (5xx, or no answer before the client left): a failed delivery it retries.
 */
export type AckOutcome = "accepted" | "rejected" | "failed";

export interface IngressMetrics {
  readonly ackDuration: Histogram<"outcome">;
  readonly requests: Counter<"code" | "reason">;
  readonly lastReceived: Gauge;
  readonly lastAnswer: Gauge<"outcome">;
}

/** The ingress metrics of DESIGN.md, registered on the service's registry. */
export function createIngressMetrics(registry: Registry): IngressMetrics {
  return {
    ackDuration: new Histogram({
      name: "qbo_webhook_ack_duration_seconds",
      help: "Time from receiving a webhook request to answering it; QuickBooks counts answers after 3 s as failed.",
      labelNames: ["outcome"],
      // Fine below 100 ms for the normal case; 2, 2.5 and 3 show how much of QuickBooks' 3 s budget is burnt.
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 2.5, 3, 5, 10],
      registers: [registry],
    }),
    requests: new Counter({
      name: "qbo_webhook_requests_total",
      help: "Webhook requests answered, by HTTP status and reason.",
      labelNames: ["code", "reason"],
      registers: [registry],
    }),
    lastReceived: new Gauge({
      name: "qbo_webhook_last_received_timestamp_seconds",
      help: "Unix time of the last correctly signed notification; silence means QuickBooks stopped delivering.",
      registers: [registry],
    }),
    lastAnswer: new Gauge({
      name: "qbo_webhook_last_answer_timestamp_seconds",
      help: "Unix time of the last answer by outcome; a failed answer newer than the last accepted one means QuickBooks' last delivery failed.",
      labelNames: ["outcome"],
      registers: [registry],
    }),
  };
}
