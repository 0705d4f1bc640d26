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
import { type EntityVersions, versionKeysOf } from "@qbo-webhooks/entity-store";
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
/** The most events judged, published and recorded together (CDC findings may hold thousands). */
const MAX_WAVE = 64;
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
    await routeAll(deps, findings.data.events);
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
  await routeAll(deps, events);
  msg.ack();
}

/**
 * Routes events in waves, in their order: a wave's events are judged together, its newer ones
 * published together, then recorded together, so a notification of several changes waits for two
 * round trips rather than two per change. An event about an entity that an earlier event of the
 * wave concerns (a Merge's merged-away one included) starts the next wave: it is judged against
 * that event's record, as if routed alone.
 */
async function routeAll(deps: OrderingDeps, events: readonly ChangeEvent[]): Promise<void> {
  for (const wave of independentWaves(events)) await routeTogether(deps, wave);
}

function independentWaves(events: readonly ChangeEvent[]): ChangeEvent[][] {
  const waves: ChangeEvent[][] = [];
  let wave: ChangeEvent[] = [];
  const concerned = new Set<string>();
  for (const event of events) {
    const keys = versionKeysOf(event);
    if (wave.length === MAX_WAVE || keys.some((key) => concerned.has(key))) {
      waves.push(wave);
      wave = [];
      concerned.clear();
    }
    wave.push(event);
    for (const key of keys) concerned.add(key);
  }
  if (wave.length > 0) waves.push(wave);
  return waves;
}

async function routeTogether(deps: OrderingDeps, events: readonly ChangeEvent[]): Promise<void> {
  // A repair is the reconciler's finding that our copy differs from QuickBooks': it passes even
  // when not newer, and each run's repair is its own message.
  const verdicts = await Promise.all(events.map((event) => (event.repair ? "newer" : deps.versions.judge(event))));
  const newer = events.filter((_, i) => verdicts[i] === "newer");
  for (const verdict of verdicts) if (verdict !== "newer") deps.metrics.events.inc({ result: verdict });
  // Every publish before any record: a crash in between republishes (deduplicated by msg id), never loses.
  const stored = await Promise.all(
    newer.map((event) =>
      publishDurable(
        deps.client,
        Subjects.events(partitionOf(event.realmId, deps.partitions), event.realmId),
        encoder.encode(JSON.stringify(event)),
        { msgId: event.repair ? `repair.${event.eventId}` : changeKey(event), timeoutMs: PUBLISH_TIMEOUT_MS },
      ),
    ),
  );
  for (const { duplicate } of stored) deps.metrics.events.inc({ result: duplicate ? "duplicate" : "published" });
  await Promise.all(newer.map((event) => deps.versions.record(event)));
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
