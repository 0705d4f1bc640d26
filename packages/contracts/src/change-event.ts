import { createHash } from "node:crypto";
import { z } from "zod";
import type { CloudEventNotification } from "./cloud-event-notification.js";
import type { LegacyNotification } from "./legacy-notification.js";
import { Operation } from "./operation.js";
import { parseQboTimestamp } from "./qbo-timestamp.js";

/**
 * One change to one entity, normalised from either webhook form or found by CDC: what flows on
 * QBO_EVENTS. `occurredAt` is QuickBooks' own time of the change, the truth for ordering.
 */
export const ChangeEvent = z.object({
  realmId: z.string().min(1),
  entity: z.string().regex(/^[A-Za-z]+$/),
  id: z.string().min(1),
  operation: Operation,
  occurredAt: z.iso.datetime(),
  /** On Merge: the id merged away. */
  deletedId: z.string().min(1).optional(),
  source: z.enum(["webhook", "cdc"]),
  /**
   * Set by the daily reconciliation when our copy differs from QuickBooks' although the change is
   * not newer than what was recorded (a copy damaged or lost outside the pipeline): apply anyway.
   */
  repair: z.literal(true).optional(),
  /** CloudEvents `id`; for legacy and CDC events, derived from the change itself. */
  eventId: z.string().min(1),
});
export type ChangeEvent = z.infer<typeof ChangeEvent>;

/**
 * The identity of an event: a retry or duplicate of it gets the same key. The event id is part of
 * it because QuickBooks' times have one-second resolution: two changes to one entity in the same
 * second differ only by it.
 */
export function changeKey(
  event: Pick<ChangeEvent, "realmId" | "entity" | "id" | "operation" | "occurredAt" | "eventId">,
): string {
  return `${event.realmId}.${event.entity}.${event.id}.${event.operation}.${Date.parse(event.occurredAt)}.${event.eventId}`;
}

function derivedEventId(realmId: string, entity: string, id: string, operation: string, occurredAt: string): string {
  return createHash("sha256")
    .update(`${realmId}/${entity}/${id}/${operation}/${occurredAt}`)
    .digest("hex")
    .slice(0, 32);
}

const iso = (qboTime: string) => new Date(parseQboTimestamp(qboTime)).toISOString();

/** The change events a CloudEvents notification announces, one per event. */
export function changeEventsFromCloudEvents(notification: CloudEventNotification): ChangeEvent[] {
  return notification.map((event) => ({
    realmId: event.intuitaccountid,
    entity: event.type.entity,
    id: event.intuitentityid,
    operation: event.type.operation,
    occurredAt: iso(event.time),
    ...(event.data?.deletedid ? { deletedId: event.data.deletedid } : {}),
    source: "webhook",
    eventId: event.id,
  }));
}

/** The change events a legacy notification announces, one per entity entry. */
export function changeEventsFromLegacy(notification: LegacyNotification): ChangeEvent[] {
  return notification.eventNotifications.flatMap((realm) =>
    (realm.dataChangeEvent?.entities ?? []).map((change) => {
      const occurredAt = iso(change.lastUpdated);
      return {
        realmId: realm.realmId,
        entity: change.name,
        id: change.id,
        operation: change.operation,
        occurredAt,
        ...(change.deletedId ? { deletedId: change.deletedId } : {}),
        source: "webhook" as const,
        eventId: derivedEventId(realm.realmId, change.name, change.id, change.operation, occurredAt),
      };
    }),
  );
}

/**
 * What a CDC run found for one realm, published by the reconciler to QBO_WEBHOOKS (header
 * `Qbo-Payload-Form: cdc`) so found changes pass the same ordering rules as webhook events.
 */
export const CdcFindings = z.object({
  realmId: z.string().min(1),
  events: z.array(ChangeEvent).min(1),
});
export type CdcFindings = z.infer<typeof CdcFindings>;

/** A change event for an object CDC or a query returned (QBO.md §4); `Deleted` rows become Delete. */
export function changeEventFromObject(
  realmId: string,
  entity: string,
  object: { Id: string; status?: unknown; MetaData?: { LastUpdatedTime?: string | undefined } | undefined },
  options: { repair?: boolean } = {},
): ChangeEvent | undefined {
  const lastUpdated = object.MetaData?.LastUpdatedTime;
  if (!lastUpdated) return undefined;
  const operation = object.status === "Deleted" ? "Delete" : "Update";
  const occurredAt = iso(lastUpdated);
  return {
    realmId,
    entity,
    id: object.Id,
    operation,
    occurredAt,
    source: "cdc",
    eventId: derivedEventId(realmId, entity, object.Id, operation, occurredAt),
    ...(options.repair ? { repair: true as const } : {}),
  };
}
