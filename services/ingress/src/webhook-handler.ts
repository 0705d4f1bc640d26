import type { IncomingMessage, ServerResponse } from "node:http";
import { context, type Span, trace } from "@opentelemetry/api";
import {
  Headers,
  isSignedByIntuit,
  notificationMsgId,
  recognizeNotification,
  Streams,
  Subjects,
} from "@qbo-webhooks/contracts";
import { type NatsClient, PublishError, publishDurable } from "@qbo-webhooks/messaging";
import type { Logger } from "@qbo-webhooks/observability";
import type { IngressMetrics, WebhookReason } from "./ingress-metrics.js";

export interface WebhookHandlerDeps {
  readonly verifierTokens: readonly string[];
  readonly publishTimeoutMs: number;
  /** The NATS client once connected and its streams declared; undefined before. */
  readonly nats: () => NatsClient | undefined;
  readonly metrics: IngressMetrics;
  readonly logger: Logger;
}

/** One request to the webhook: its answer's reason, set by `answer`, and its span. */
export interface WebhookExchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly span: Span;
  reason?: WebhookReason;
}

/**
 * `POST /webhooks/quickbooks`: verify, store durably, then answer. 200 means stored (or nothing to
 * store); 503 asks QuickBooks to retry. Nothing slow happens here: no parsing beyond recognition,
 * no API calls.
 */
export function createWebhookHandler(deps: WebhookHandlerDeps) {
  return async (exchange: WebhookExchange, body: Buffer): Promise<void> => {
    await context.with(trace.setSpan(context.active(), exchange.span), () => handle(deps, exchange, body));
  };
}

async function handle(deps: WebhookHandlerDeps, exchange: WebhookExchange, body: Buffer): Promise<void> {
  const { req, span } = exchange;
  const signature = headerOf(req, "intuit-signature");
  if (!isSignedByIntuit(body, signature, deps.verifierTokens)) {
    const reason = signature ? "bad_signature" : "missing_signature";
    deps.logger.warn(
      { reason, bytes: body.length, ip: req.socket.remoteAddress, forwardedFor: headerOf(req, "x-forwarded-for") },
      "webhook rejected: signature does not verify",
    );
    answer(exchange, 401, reason, { error: "intuit-signature missing or does not match any verifier token" });
    return;
  }
  deps.metrics.lastReceived.setToCurrentTime();

  const recognition = recognizeNotification(body);
  if (recognition.kind === "empty") {
    answer(exchange, 200, "no_events", { status: "no_events" });
    return;
  }

  const nats = deps.nats();
  if (!nats) {
    deps.logger.error("webhook not stored: NATS not connected yet; answering 503 so QuickBooks retries");
    answer(exchange, 503, "nats_unavailable", { error: "storage unavailable, retry later" });
    return;
  }

  const receivedAt = new Date().toISOString();
  const msgId = notificationMsgId(body);
  const intuitTid = headerOf(req, "intuit-t-id");
  const common = { [Headers.receivedAt]: receivedAt, ...(intuitTid ? { [Headers.intuitTid]: intuitTid } : {}) };
  span.setAttributes({ "qbo.webhook.msg_id": msgId, "qbo.webhook.bytes": body.length });

  try {
    if (recognition.kind === "unrecognized") {
      await publishDurable(nats, Subjects.dlq("ingress"), body, {
        msgId,
        timeoutMs: deps.publishTimeoutMs,
        headers: { ...common, [Headers.dlqStage]: "ingress", [Headers.dlqReason]: oneLine(recognition.reason) },
      });
      deps.logger.warn(
        { msgId, reason: recognition.reason, contentType: headerOf(req, "content-type") },
        "signed webhook not understood: quarantined in QBO_DLQ",
      );
      answer(exchange, 200, "quarantined", { status: "quarantined" });
      return;
    }

    const stored = await publishDurable(nats, Subjects.webhooks, body, {
      msgId,
      timeoutMs: deps.publishTimeoutMs,
      headers: { ...common, [Headers.payloadForm]: recognition.form },
    });
    span.setAttributes({
      "qbo.webhook.form": recognition.form,
      "qbo.webhook.event_count": recognition.eventCount,
      "messaging.message.id": msgId,
    });
    if (stored.stream !== Streams.webhooks.name) {
      // A stream owning `qbo.webhooks` under another name would still be durable, but means a misconfiguration.
      deps.logger.warn({ stream: stored.stream }, "notification stored in an unexpected stream");
    }
    deps.logger.debug({ msgId, seq: stored.seq, duplicate: stored.duplicate }, "notification stored");
    answer(exchange, 200, stored.duplicate ? "duplicate" : "stored", {
      status: stored.duplicate ? "duplicate" : "stored",
    });
  } catch (err) {
    if (!(err instanceof PublishError)) throw err;
    const reason = PUBLISH_FAILURE_REASONS[err.code];
    deps.logger.error({ err, msgId, code: err.code }, "webhook not stored: answering 503 so QuickBooks retries");
    answer(exchange, 503, reason, { error: "storage unavailable, retry later" });
  }
}

const PUBLISH_FAILURE_REASONS = {
  NATS_UNAVAILABLE: "nats_unavailable",
  PUBLISH_TIMEOUT: "publish_timeout",
  PUBLISH_REJECTED: "publish_rejected",
  STREAM_FULL: "stream_full",
  PUBLISH_FORBIDDEN: "publish_forbidden",
  // The ingress never appends fenced; listed so every code has its answer.
  PUBLISH_FENCED: "publish_rejected",
} as const satisfies Record<PublishError["code"], WebhookReason>;

/**
 * Sends the answer and records why; the request's observer turns `reason` into metrics and the span.
 * Written with Node's own `writeHead`, not express' `res.json`, which costs a tenth of a bare express
 * handler's time on content negotiation and freshness checks a webhook's answer never needs.
 */
export function answer(
  exchange: Pick<WebhookExchange, "res" | "reason">,
  status: number,
  reason: WebhookReason,
  body: object,
): void {
  exchange.reason = reason;
  const payload = Buffer.from(JSON.stringify(body));
  exchange.res.writeHead(status, { "content-type": JSON_TYPE, "content-length": payload.length }).end(payload);
}

const JSON_TYPE = "application/json; charset=utf-8";

/** A request header's value; Node joins a repeated one with ", " (all but a few it keeps as lists). */
function headerOf(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(", ") : value;
}

// Header values are single lines; reasons come from validation messages of arbitrary length.
function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, " ").slice(0, 1024);
}
