import { randomUUID } from "node:crypto";
import type { ChangeRecord } from "../company/company.js";
import { formatLegacyOffsetTime } from "../company/qbo-time.js";

export type PayloadForm = "cloudevents" | "legacy";

/** Intuit's sample repo: up to 100 events, about 1 MB, per POST (QBO.md §1b). */
export const MAX_EVENTS_PER_NOTIFICATION = 100;
export const MAX_NOTIFICATION_BYTES = 1_000_000;

const CLOUD_EVENT_VERB = {
  Create: "created",
  Update: "updated",
  Delete: "deleted",
  Merge: "merged",
  Void: "void",
  Emailed: "emailed",
} as const;

/**
 * QuickBooks spells some things two ways (QBO.md §1a, §1b): `void` and `voided` in a CloudEvent's
 * type, `deletedId` and `deletedID` on a legacy Merge, `lastUpdated` with milliseconds and `Z` or to the
 * second with an offset like `-0700`. The sandbox sends both, taking turns by entity and second, so readers meet both.
 */
const otherSpelling = (change: ChangeRecord) =>
  (Number.parseInt(change.id, 10) + Math.floor(change.at / 1000)) % 2 === 1;

/** One CloudEvent for a change; retries resend the same object, so the same `id` (QBO.md §1b). */
export function toCloudEvent(change: ChangeRecord, appSource: string) {
  return {
    specversion: "1.0",
    id: randomUUID(),
    source: appSource,
    type: `qbo.${change.entity.toLowerCase()}.${change.operation === "Void" && otherSpelling(change) ? "voided" : CLOUD_EVENT_VERB[change.operation]}.v1`,
    datacontenttype: "application/json",
    time: new Date(change.at).toISOString(),
    intuitentityid: change.id,
    intuitaccountid: change.realmId,
    data: change.deletedId ? { deletedid: change.deletedId } : {},
  };
}

function toLegacyEntity(change: ChangeRecord) {
  const other = otherSpelling(change);
  return {
    name: change.entity,
    id: change.id,
    operation: change.operation,
    lastUpdated: other ? formatLegacyOffsetTime(change.at) : new Date(change.at).toISOString(),
    ...(change.deletedId ? { [other ? "deletedID" : "deletedId"]: change.deletedId } : {}),
  };
}

/**
 * Splits aggregated changes into notification bodies as QuickBooks does: at most 100 events and
 * about 1 MB each; legacy bodies carry one realm each, as QuickBooks sends today (QBO.md §1a).
 */
export function buildBodies(changes: readonly ChangeRecord[], form: PayloadForm, appSource: string): Body[] {
  const groups = form === "legacy" ? groupByRealm(changes) : [changes];
  const bodies: Body[] = [];
  for (const group of groups) {
    let batch: ChangeRecord[] = [];
    let bytes = 0;
    const flush = () => {
      if (batch.length === 0) return;
      bodies.push(render(batch, form, appSource));
      batch = [];
      bytes = 0;
    };
    for (const change of group) {
      const size = JSON.stringify(form === "legacy" ? toLegacyEntity(change) : toCloudEvent(change, appSource)).length;
      if (batch.length >= MAX_EVENTS_PER_NOTIFICATION || bytes + size > MAX_NOTIFICATION_BYTES) flush();
      batch.push(change);
      bytes += size;
    }
    flush();
  }
  return bodies;
}

export interface Body {
  readonly text: string;
  readonly changes: readonly ChangeRecord[];
}

function render(changes: readonly ChangeRecord[], form: PayloadForm, appSource: string): Body {
  if (form === "cloudevents") {
    return { text: JSON.stringify(changes.map((change) => toCloudEvent(change, appSource))), changes };
  }
  const realmId = changes[0]?.realmId ?? "";
  const text = JSON.stringify({
    eventNotifications: [{ realmId, dataChangeEvent: { entities: changes.map(toLegacyEntity) } }],
  });
  return { text, changes };
}

function groupByRealm(changes: readonly ChangeRecord[]): ChangeRecord[][] {
  const byRealm = new Map<string, ChangeRecord[]>();
  for (const change of changes) {
    const group = byRealm.get(change.realmId) ?? [];
    group.push(change);
    byRealm.set(change.realmId, group);
  }
  return [...byRealm.values()];
}

/** The body of an endpoint check or test ping: a notification with no events. */
export function emptyBody(form: PayloadForm): string {
  return form === "cloudevents" ? "[]" : JSON.stringify({ eventNotifications: [] });
}
