import { context, SpanKind, trace } from "@opentelemetry/api";
import {
  CdcFindings,
  type ChangeEvent,
  changeEventsFromCloudEvents,
  changeEventsFromLegacy,
  changeKey,
  Headers,
  partitionOf,
  recognizeNotification,
  Subjects,
} from "@qbo-webhooks/contracts";
import type { EntityVersions } from "@qbo-webhooks/entity-store";
import {
  backoffMs,
  isStorageUnavailable,
  type JsMsg,
  type NatsClient,
  publishDurable,
  deadLetter as storeDeadLetter,
} from "@qbo-webhooks/messaging";
import { extractTraceContext, inSpan, type Logger } from "@qbo-webhooks/observability";
import type { OrderingMetrics } from "./ordering-metrics.js";

export interface OrderingDeps {
  readonly client: NatsClient;
  readonly versions: EntityVersions;
  readonly partitions: number;
  readonly maxAttempts: number;
  readonly metrics: OrderingMetrics;
  readonly logger: Logger;
}

const PUBLISH_TIMEOUT_MS = 5000;
const encoder = new TextEncoder();

/**
 * Handles one stored notification: splits it into change events, drops the ones not newer than
 * what is recorded, publishes the rest to their realm's partition, and acks only after all are
 * stored. After `maxAttempts` failures the notification is dead-lettered instead of blocking.
 */
export function createNotificationHandler(deps: OrderingDeps) {
  const tracer = trace.getTracer("qbo-webhooks-ordering");
  return async (msg: JsMsg): Promise<void> => {
    const parent = msg.headers ? extractTraceContext(msg.headers) : context.active();
    try {
      await inSpan(tracer, "order notification", { kind: SpanKind.CONSUMER }, () => handle(deps, msg), parent);
    } catch (err) {
      await retryOrDeadLetter(deps, msg, err);
    }
  };
}

async function handle(deps: OrderingDeps, msg: JsMsg): Promise<void> {
  if (msg.headers?.get(Headers.payloadForm) === "cdc") {
    const findings = CdcFindings.safeParse(JSON.parse(new TextDecoder().decode(msg.data)));
    if (!findings.success) {
      deps.metrics.events.inc({ result: "invalid" });
      await deadLetter(deps, msg, `not CDC findings: ${findings.error.message.slice(0, 300)}`);
      return;
    }
    for (const event of findings.data.events) await route(deps, event);
    msg.ack();
    return;
  }
  const recognition = recognizeNotification(msg.data);
  if (recognition.kind === "empty") {
    msg.ack();
    return;
  }
  if (recognition.kind === "unrecognized") {
    deps.metrics.events.inc({ result: "invalid" });
    await deadLetter(deps, msg, `not a notification: ${recognition.reason}`);
    return;
  }
  const events =
    recognition.form === "cloudevents"
      ? changeEventsFromCloudEvents(recognition.notification)
      : changeEventsFromLegacy(recognition.notification);
  for (const event of events) await route(deps, event);
  msg.ack();
}

async function route(deps: OrderingDeps, event: ChangeEvent): Promise<void> {
  // A repair is the reconciler's finding that our copy differs from QuickBooks': it passes even
  // when not newer, and each run's repair is its own message.
  const verdict = event.repair ? "newer" : await deps.versions.judge(event);
  if (verdict !== "newer") {
    deps.metrics.events.inc({ result: verdict });
    return;
  }
  // Publish before recording: a crash in between republishes (deduplicated by msg id), never loses.
  const stored = await publishDurable(
    deps.client,
    Subjects.events(partitionOf(event.realmId, deps.partitions), event.realmId),
    encoder.encode(JSON.stringify(event)),
    { msgId: event.repair ? `repair.${event.eventId}` : changeKey(event), timeoutMs: PUBLISH_TIMEOUT_MS },
  );
  deps.metrics.events.inc({ result: stored.duplicate ? "duplicate" : "published" });
  await deps.versions.record(event);
}

async function retryOrDeadLetter(deps: OrderingDeps, msg: JsMsg, err: unknown): Promise<void> {
  const attempt = msg.info.deliveryCount;
  if (isStorageUnavailable(err)) {
    // NATS down or QBO_EVENTS full is not this notification's fault: it waits however long that lasts.
    deps.logger.warn({ err, seq: msg.seq, attempt }, "cannot store change events yet; the notification waits");
    msg.nak(backoffMs(Math.min(attempt, 5), 1000, 30_000));
    return;
  }
  if (attempt >= deps.maxAttempts) {
    await deadLetter(
      deps,
      msg,
      `failed ${attempt} times: ${err instanceof Error ? err.message : String(err)}`,
      attempt,
    );
    return;
  }
  deps.logger.warn({ err, seq: msg.seq, attempt }, "ordering a notification failed; it will be retried");
  msg.nak(backoffMs(attempt - 1, 1000, 30_000));
}

/**
 * Moves a notification to `qbo.dlq.ordering` with the reason, keeping what a replay needs (its
 * payload form: CDC findings are not notifications), then removes it from the work.
 */
async function deadLetter(deps: OrderingDeps, msg: JsMsg, why: string, attempts?: number): Promise<void> {
  const notificationId = msg.headers?.get(Headers.msgId) || `seq-${msg.seq}`;
  const reason = await storeDeadLetter(deps.client, msg.data, {
    stage: "ordering",
    reason: why,
    msgId: `ordering-${notificationId}`,
    ...(attempts === undefined ? {} : { attempts }),
    headers: {
      [Headers.receivedAt]: msg.headers?.get(Headers.receivedAt) ?? "",
      [Headers.payloadForm]: msg.headers?.get(Headers.payloadForm) ?? "",
    },
  });
  deps.logger.error({ seq: msg.seq, notificationId, reason }, "notification dead-lettered");
  msg.term(reason);
}
