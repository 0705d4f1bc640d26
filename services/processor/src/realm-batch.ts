import { SpanKind, trace } from "@opentelemetry/api";
import { type AppliedChange, type ChangeEvent, type EntityName, entityNameFromAnyCase } from "@qbo-webhooks/contracts";
import {
  type DeferredWatermarks,
  type EntityStore,
  entityVersionOf,
  type ReadAhead,
  StoredEntity,
} from "@qbo-webhooks/entity-store";
import { backoffMs, deadLetter, type JsMsg, type NatsClient, PublishError } from "@qbo-webhooks/messaging";
import { extractTraceContext, inSpan, type Logger } from "@qbo-webhooks/observability";
import { type QuickBooksClient, QuickBooksError } from "@qbo-webhooks/quickbooks";
import type { ChangeOutputs } from "./change-outputs.js";
import type { ProcessorMetrics } from "./processor-metrics.js";
import { type Fetched, type FetchStrategy, fetchChanged } from "./realm-fetch.js";

export interface Pending {
  readonly event: ChangeEvent;
  readonly msg: JsMsg;
}

export interface BatchDeps {
  readonly client: NatsClient;
  readonly quickbooks: QuickBooksClient;
  readonly store: EntityStore;
  /** Where each batch moves its entity types' watermarks; written together, every few seconds. */
  readonly watermarks: DeferredWatermarks;
  readonly outputs: ChangeOutputs;
  readonly metrics: ProcessorMetrics;
  readonly logger: Logger;
  readonly maxAttempts: number;
  /** `cdc`: one CDC call per batch for all its entity types; `query`: one `Id IN` query per type. */
  readonly fetchStrategy: FetchStrategy;
  /** First retry delay; doubles per attempt. A realm without valid tokens waits 30 times longer. */
  readonly retryBaseMs: number;
  readonly hooks?: ProcessorHooks;
  /** Whether this replica still holds the partition: checked before each event. */
  readonly stillOwner: () => boolean;
}

/**
 * Seen from outside: a batch of a realm starting and ending, and each change between its
 * publication and its recording in our copy. Tests use them to prove that no realm is processed by
 * two replicas at once, and to fail a batch at the worst moment.
 */
export interface ProcessorHooks {
  batchStarted(realmId: string): void;
  batchEnded(realmId: string): void;
  published?(change: AppliedChange): Promise<void>;
}

/**
 * Applies one realm's events, oldest first: fetches every changed entity with as few calls as it
 * can, and for each one newer than our copy publishes the change (feed, then delivery queue)
 * before our copy records it; acks each event once its outputs are stored.
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

async function applyBatch(deps: BatchDeps, realmId: string, batch: readonly Pending[]): Promise<void> {
  const ordered = [...batch].sort((a, b) => Date.parse(a.event.occurredAt) - Date.parse(b.event.occurredAt));
  // Our copies of the entities the batch changes are read together (rather than one round trip
  // each) and while QuickBooks answers: what they are compared with comes later, and a copy that
  // changes meanwhile costs a compare-and-set conflict, not a mistake.
  const [fetching, reading] = await Promise.allSettled([
    fetchChanged(
      deps.quickbooks,
      deps.fetchStrategy,
      realmId,
      ordered.map((p) => p.event),
    ),
    deps.store.readAhead(
      realmId,
      ordered.flatMap(({ event }) => {
        const entity = entityNameFromAnyCase(event.entity);
        return entity && event.operation !== "Delete" ? [{ entity, id: event.id }] : [];
      }),
    ),
  ]);
  if (fetching.status === "rejected") {
    const err: unknown = fetching.reason;
    if (!(err instanceof QuickBooksError)) throw err;
    await Promise.all(ordered.map((pending) => retryOrDeadLetter(deps, pending, err)));
    return;
  }
  if (reading.status === "rejected") throw reading.reason;
  const fetched = fetching.value;
  const ahead = reading.value;
  for (const [i, pending] of ordered.entries()) {
    try {
      if (!deps.stillOwner()) throw new PublishError("PUBLISH_FENCED", "the partition's lease is lapsing");
      const entity = await apply(deps, pending.event, fetched, ahead);
      // The batch's events are in time order: each type's watermark ends at its latest event applied.
      if (entity) deps.watermarks.advance(realmId, entity, pending.event.occurredAt);
    } catch (err) {
      if (!(err instanceof PublishError && err.code === "PUBLISH_FENCED")) throw err;
      // The lease is gone or lapsing: hand the rest back for the next holder, who applies them after
      // whatever it has appended (our appends are refused from its first one on).
      deps.logger.warn({ realmId, reason: err.message }, "partition lease lost mid-batch; events handed back");
      for (const rest of ordered.slice(i)) rest.msg.nak();
      return;
    }
    pending.msg.ack();
  }
}

/** Applies one event; answers its entity type, or undefined for one we do not know (skipped). */
async function apply(
  deps: BatchDeps,
  event: ChangeEvent,
  fetched: Fetched,
  ahead: ReadAhead,
): Promise<EntityName | undefined> {
  const entity = entityNameFromAnyCase(event.entity);
  if (!entity) {
    deps.metrics.events.inc({ result: "failed" });
    deps.logger.warn({ entity: event.entity }, "unknown entity type; event skipped");
    return undefined;
  }
  if (event.operation === "Delete") {
    await deps.store.remove(event.realmId, entity, event.id, announcer(deps, event, entity, event.id, undefined));
    deps.metrics.events.inc({ result: "deleted" });
  } else {
    const object = fetched.get(entity)?.get(event.id);
    // Gone by the time we asked (object undefined): a Delete event for it follows, so nothing to apply now.
    let applied = false;
    if (object !== undefined) {
      const data = StoredEntity.parse(object);
      const announce = announcer(deps, event, entity, event.id, data);
      applied = event.repair
        ? await deps.store.replace(event.realmId, entity, data, announce, ahead)
        : await deps.store.applyIfNewer(event.realmId, entity, data, announce, ahead);
    }
    deps.metrics.events.inc({ result: applied ? "applied" : "stale" });
    if (event.operation === "Merge" && event.deletedId) {
      const gone = event.deletedId;
      await deps.store.remove(event.realmId, entity, gone, announcer(deps, event, entity, gone, undefined));
    }
  }
  deps.metrics.freshness.observe(Math.max(0, (Date.now() - Date.parse(event.occurredAt)) / 1000));
  return entity;
}

/** Publishes the change an event led to: the entity's new state, or its removal when `data` is undefined. */
function announcer(
  deps: BatchDeps,
  event: ChangeEvent,
  entity: EntityName,
  id: string,
  data: StoredEntity | undefined,
) {
  return async () => {
    const change: AppliedChange = {
      realmId: event.realmId,
      entity,
      id,
      operation: event.operation,
      occurredAt: event.occurredAt,
      appliedAt: new Date().toISOString(),
      ...(data ? { version: entityVersionOf(data), data } : {}),
    };
    await deps.outputs.publish(change);
    await deps.hooks?.published?.(change);
  };
}

async function retryOrDeadLetter(deps: BatchDeps, { event, msg }: Pending, err: QuickBooksError): Promise<void> {
  const attempt = msg.info.deliveryCount;
  // Throttling is QuickBooks asking us to wait, and a refused client secret is our configuration
  // error: neither is a reason to give an event up. A malformed answer may be one cut short on its
  // way, and a refused token may be refreshed by then: both are tried again, a few times.
  const worthRetrying =
    err.code === "QBO_THROTTLED" ||
    err.code === "QBO_CLIENT_REFUSED" ||
    (attempt < deps.maxAttempts &&
      (err.retryable || err.code === "QBO_UNAUTHORIZED" || err.code === "QBO_BAD_RESPONSE"));
  if (worthRetrying) {
    deps.metrics.events.inc({ result: "failed" });
    // Without valid tokens or client credentials, waits are longer: the fix takes a person.
    const delay =
      err.code === "QBO_UNAUTHORIZED" || err.code === "QBO_CLIENT_REFUSED"
        ? 30 * deps.retryBaseMs
        : backoffMs(attempt, deps.retryBaseMs, 60 * deps.retryBaseMs);
    msg.nak(delay);
    return;
  }
  const reason = await deadLetter(deps.client, msg.data, {
    stage: "processor",
    reason: `${err.code}: ${err.message}`,
    msgId: `processor-${event.eventId}-${msg.seq}`,
    attempts: attempt,
    realmId: event.realmId,
  });
  deps.metrics.events.inc({ result: "dead_lettered" });
  deps.logger.error(
    { realmId: event.realmId, eventId: event.eventId, reason, intuitTid: err.details.intuitTid },
    "event dead-lettered",
  );
  msg.term(reason);
}
