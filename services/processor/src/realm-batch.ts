import { SpanKind, trace } from "@opentelemetry/api";
import {
  type AppliedChange,
  CDC_UNSUPPORTED_ENTITIES,
  type ChangeEvent,
  type EntityName,
  entityNameFromAnyCase,
  Headers,
  Subjects,
} from "@qbo-webhooks/contracts";
import type { EntityStore } from "@qbo-webhooks/entity-store";
import { backoffMs, type JsMsg, type NatsClient, publishDurable } from "@qbo-webhooks/messaging";
import { extractTraceContext, inSpan, type Logger } from "@qbo-webhooks/observability";
import { type QboObject, type QuickBooksClient, QuickBooksError } from "@qbo-webhooks/quickbooks";
import type { ProcessorMetrics } from "./processor-metrics.js";

export type FetchStrategy = "cdc" | "query";

/** QuickBooks' times have one-second resolution; look back a little further than the oldest event. */
const CDC_MARGIN_MS = 2000;
const CDC_LOOKBACK_MS = 29 * 24 * 3600 * 1000;

export interface Pending {
  readonly event: ChangeEvent;
  readonly msg: JsMsg;
}

export interface BatchDeps {
  readonly client: NatsClient;
  readonly quickbooks: QuickBooksClient;
  readonly store: EntityStore;
  readonly metrics: ProcessorMetrics;
  readonly logger: Logger;
  readonly maxAttempts: number;
  /** `cdc`: one CDC call per batch for all its entity types; `query`: one `Id IN` query per type. */
  readonly fetchStrategy: FetchStrategy;
  /** First retry delay; doubles per attempt. A realm without valid tokens waits 30 times longer. */
  readonly retryBaseMs: number;
  readonly hooks?: ProcessorHooks;
  /** Whether this replica still holds the partition: checked before every write. */
  readonly stillOwner: () => boolean;
}

const PUBLISH_TIMEOUT_MS = 5000;
const encoder = new TextEncoder();

/**
 * Applies one realm's events, oldest first: fetches every changed entity with as few calls as it
 * can (one CDC call, or one `Id IN` query per type, for the whole batch; Delete needs none), stores
 * what is newer than our copy, publishes each applied change, and acks each event once its
 * outputs are stored.
 */
export async function processRealmBatch(deps: BatchDeps, realmId: string, batch: readonly Pending[]): Promise<void> {
  deps.hooks?.batchStarted(realmId);
  // One span for the batch, linked to the trace of every event in it (each began at the ingress).
  const links = batch.flatMap(({ msg }) => {
    const context = msg.headers ? trace.getSpanContext(extractTraceContext(msg.headers)) : undefined;
    return context ? [{ context }] : [];
  });
  const options = {
    kind: SpanKind.CONSUMER,
    links,
    attributes: { "qbo.realm_id": realmId, "qbo.batch_size": batch.length },
  };
  try {
    await inSpan(tracer, "apply realm batch", options, () => applyBatch(deps, realmId, batch));
  } finally {
    deps.hooks?.batchEnded(realmId);
  }
}

const tracer = trace.getTracer("qbo-webhooks-processor");

/**
 * Seen from outside: a batch of a realm starting and ending. Tests use it to prove that no realm
 * is ever processed by two replicas at once.
 */
export interface ProcessorHooks {
  batchStarted(realmId: string): void;
  batchEnded(realmId: string): void;
}

async function applyBatch(deps: BatchDeps, realmId: string, batch: readonly Pending[]): Promise<void> {
  const ordered = [...batch].sort((a, b) => Date.parse(a.event.occurredAt) - Date.parse(b.event.occurredAt));
  let fetched: Map<EntityName, Map<string, QboObject>>;
  try {
    fetched = await fetchChanged(deps, realmId, ordered);
  } catch (err) {
    if (!(err instanceof QuickBooksError)) throw err;
    await Promise.all(ordered.map((pending) => retryOrDeadLetter(deps, pending, err)));
    return;
  }
  for (const [i, pending] of ordered.entries()) {
    if (!deps.stillOwner()) {
      // The lease is gone or about to lapse: hand the rest back for the next holder.
      for (const rest of ordered.slice(i)) rest.msg.nak();
      return;
    }
    await apply(deps, pending, fetched);
    pending.msg.ack();
  }
}

/**
 * The current state of every entity the batch's events name (Delete needs none). With the CDC
 * strategy, as QuickBooks advises, one call covers all types back to the oldest event; ids it
 * does not return (CDC's cap, types it does not cover, events older than its 30 days) are read
 * with `Id IN` queries. Entities deleted since are absent from the answer.
 */
async function fetchChanged(deps: BatchDeps, realmId: string, ordered: readonly Pending[]) {
  const wanted = new Map<EntityName, Set<string>>();
  for (const { event } of ordered) {
    const entity = entityNameFromAnyCase(event.entity);
    if (!entity || event.operation === "Delete") continue;
    wanted.set(entity, (wanted.get(entity) ?? new Set<string>()).add(event.id));
  }
  const fetched = new Map<EntityName, Map<string, QboObject>>();
  const oldest = Math.min(...ordered.map((p) => Date.parse(p.event.occurredAt)));
  const cdcTypes = [...wanted.keys()].filter((entity) => !CDC_UNSUPPORTED_ENTITIES.has(entity));
  if (deps.fetchStrategy === "cdc" && cdcTypes.length > 0 && Date.now() - oldest < CDC_LOOKBACK_MS) {
    const cdc = await deps.quickbooks.changedSince(realmId, cdcTypes, new Date(oldest - CDC_MARGIN_MS));
    for (const entity of cdcTypes) {
      const found = cdc.changed.get(entity) ?? new Map<string, QboObject>();
      fetched.set(entity, found);
      const gone = cdc.deleted.get(entity);
      const ids = wanted.get(entity) ?? new Set<string>();
      // Complete answers settle every id: returned, deleted, or unchanged since (then already applied).
      if (cdc.complete) wanted.delete(entity);
      else for (const id of ids) if (found.has(id) || gone?.has(id)) ids.delete(id);
    }
  }
  for (const [entity, ids] of wanted) {
    if (ids.size === 0) continue;
    const read = await deps.quickbooks.readMany(realmId, entity, [...ids]);
    fetched.set(entity, new Map([...(fetched.get(entity) ?? []), ...read]));
  }
  return fetched;
}

async function apply(deps: BatchDeps, { event }: Pending, fetched: Map<EntityName, Map<string, QboObject>>) {
  const entity = entityNameFromAnyCase(event.entity);
  if (!entity) {
    deps.metrics.events.inc({ result: "failed" });
    deps.logger.warn({ entity: event.entity }, "unknown entity type; event skipped");
    return;
  }
  if (event.operation === "Delete") {
    // A repeated or late Delete finds nothing to remove and changes nothing.
    const removed = await deps.store.remove(event.realmId, entity, event.id);
    if (removed) await publishChange(deps, event, entity, event.id, undefined);
    deps.metrics.events.inc({ result: removed ? "deleted" : "stale" });
  } else {
    const data = fetched.get(entity)?.get(event.id);
    // Gone by the time we asked: a Delete event for it follows, so nothing to apply now.
    const applied =
      data !== undefined &&
      (event.repair
        ? await deps.store.replace(event.realmId, entity, data)
        : await deps.store.applyIfNewer(event.realmId, entity, data));
    if (applied) await publishChange(deps, event, entity, event.id, data);
    deps.metrics.events.inc({ result: applied ? "applied" : "stale" });
    if (event.operation === "Merge" && event.deletedId) {
      if (await deps.store.remove(event.realmId, entity, event.deletedId))
        await publishChange(deps, event, entity, event.deletedId, undefined);
    }
  }
  await deps.store.advanceWatermark(event.realmId, entity, event.occurredAt);
  deps.metrics.freshness.observe(Math.max(0, (Date.now() - Date.parse(event.occurredAt)) / 1000));
}

async function publishChange(
  deps: BatchDeps,
  event: ChangeEvent,
  entity: EntityName,
  id: string,
  data: QboObject | undefined,
) {
  const change: AppliedChange = {
    realmId: event.realmId,
    entity,
    id,
    operation: event.operation,
    occurredAt: event.occurredAt,
    appliedAt: new Date().toISOString(),
    ...(data ? { data } : {}),
  };
  const version = data ? `v${String(data.SyncToken ?? "0")}` : `gone${Date.parse(event.occurredAt)}`;
  await publishDurable(deps.client, Subjects.changes(event.realmId, entity), encoder.encode(JSON.stringify(change)), {
    msgId: `${event.realmId}.${entity}.${id}.${version}`,
    timeoutMs: PUBLISH_TIMEOUT_MS,
  });
}

async function retryOrDeadLetter(deps: BatchDeps, { event, msg }: Pending, err: QuickBooksError): Promise<void> {
  const attempt = msg.info.deliveryCount;
  // Throttling is QuickBooks asking us to wait, never a reason to give an event up.
  const worthRetrying =
    err.code === "QBO_THROTTLED" || (attempt < deps.maxAttempts && (err.retryable || err.code === "QBO_UNAUTHORIZED"));
  if (worthRetrying) {
    deps.metrics.events.inc({ result: "failed" });
    // A realm without valid tokens waits longer: reconnecting it takes a person.
    const delay =
      err.code === "QBO_UNAUTHORIZED"
        ? 30 * deps.retryBaseMs
        : backoffMs(attempt, deps.retryBaseMs, 60 * deps.retryBaseMs);
    msg.nak(delay);
    return;
  }
  const reason = `${err.code}: ${err.message}`.replace(/[\r\n]+/g, " ").slice(0, 1024);
  await publishDurable(deps.client, Subjects.dlq("processor"), msg.data, {
    msgId: `processor-${event.eventId}-${msg.seq}`,
    timeoutMs: PUBLISH_TIMEOUT_MS,
    headers: { [Headers.dlqStage]: "processor", [Headers.dlqReason]: reason, "Qbo-Attempts": String(attempt) },
  });
  deps.metrics.events.inc({ result: "dead_lettered" });
  deps.logger.error(
    { realmId: event.realmId, eventId: event.eventId, reason, intuitTid: err.details.intuitTid },
    "event dead-lettered",
  );
  msg.term(reason);
}
