import { createHash } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import {
  type CdcFindings,
  type ChangeEvent,
  changeEventFromObject,
  Headers,
  notificationMsgId,
  type RealmRecord,
  Subjects,
} from "@qbo-webhooks/contracts";
import type { EntityStore, EntityVersions, RealmRegistry } from "@qbo-webhooks/entity-store";
import { type NatsClient, publishDurable } from "@qbo-webhooks/messaging";
import type { Logger } from "@qbo-webhooks/observability";
import type { QboObject, QuickBooksClient } from "@qbo-webhooks/quickbooks";
import { scanRealm } from "./cdc-scan.js";
import type { ReconcilerMetrics } from "./reconciler-metrics.js";

const DAY = 24 * 3600_000;
/** CDC looks back at most 30 days (QBO.md §4); beyond that, a full resync. */
const CDC_LOOKBACK_MS = 30 * DAY - 3600_000;
/** Clocks differ and QuickBooks' times have one-second resolution: verify a little further back. */
const MARGIN_MS = 5 * 60_000;
const EVENTS_PER_MESSAGE = 500;
const encoder = new TextEncoder();

/**
 * `catch-up`: from where the realm was last verified; `daily`: over the last day, also repairing our copy; `requested`:
 * by hand (or a reconnect), which takes every change up to now, however young.
 */
export type CdcKind = NonNullable<RealmRecord["lastCdcSummary"]>["kind"];

export interface CdcDeps {
  readonly client: NatsClient;
  readonly quickbooks: QuickBooksClient;
  readonly store: EntityStore;
  readonly versions: EntityVersions;
  readonly registry: RealmRegistry;
  readonly metrics: ReconcilerMetrics;
  readonly logger: Logger;
  /** The clock QuickBooks' times are compared with (the sandbox's, in tests). */
  readonly now: () => number;
  readonly missedGraceMs: number;
  /** Checked before publishing: a replica that lost leadership must not act. */
  readonly stillLeader: () => boolean;
}

/**
 * One CDC run for one realm: scans QuickBooks from the point the realm was last verified up to, less a
 * margin (a daily run from its last daily run, if older; a full resync when neither is known or it is
 * beyond CDC's reach), and publishes what the pipeline has not seen as `source=cdc`
 * events to QBO_WEBHOOKS, so ordering dedupes and drops stale ones as for webhooks; where our copy
 * is behind by version though not by time, as a repair. Changes no webhook announced count as
 * missed. A full resync also removes what QuickBooks no longer has; a daily run also repairs
 * copies whose content differs. Afterwards the realm is verified up to the run's start, less the grace.
 *
 * A change younger than `missedGraceMs` may still have its webhook on the way: a scheduled run
 * leaves it to the next run, a requested one publishes it (ordering drops the webhook's copy as a
 * duplicate) without counting it as missed. The grace only ever decides what counts as missed.
 */
export async function runRealmCdc(deps: CdcDeps, realm: RealmRecord, kind: CdcKind): Promise<void> {
  const startedAt = deps.now();
  const since = windowStart(realm, kind, startedAt);
  const full = since === undefined;
  // Taken once, before any listing: a snapshot older than the listing is what deletion detection needs.
  let snapshot: Promise<Map<string, Set<string>>> | undefined;
  const copyIds = async (entity: string) => {
    snapshot ??= deps.store.idsByType(realm.realmId);
    return (await snapshot).get(entity) ?? new Set<string>();
  };
  const scan = await scanRealm(deps.quickbooks, realm.realmId, realm.entities, since, copyIds, (typesDone, found) =>
    deps.registry
      .update(realm.realmId, (r) => r && { ...r, cdcProgress: { found, typesDone, types: realm.entities.length } })
      .then(() => undefined),
  );

  const events: ChangeEvent[] = [];
  const graceStart = startedAt - deps.missedGraceMs;
  const upTo = kind === "requested" || full ? startedAt : graceStart;
  let found = 0;
  let left = 0;
  let deferred = 0;
  let missed = 0;
  let repaired = 0;
  const repair = (entity: string, object: QboObject) => {
    const event = changeEventFromObject(realm.realmId, entity, object, { repair: true });
    if (!event) return;
    repaired++;
    events.push({ ...event, eventId: `${event.eventId}.${startedAt}` });
  };
  for (const [entity, objects] of scan.found) {
    for (const object of objects) {
      found++;
      const event = changeEventFromObject(realm.realmId, entity, object);
      if (!event) continue;
      const at = Date.parse(event.occurredAt);
      // Too young to judge: its webhook may be on its way. The next run's window covers it.
      if (at > upTo) {
        deferred++;
        continue;
      }
      // The very change recorded already: announced by a webhook, or found by an earlier run and on
      // its way. Not missed, and not to be published again (a daily run still compares content).
      const judged = await deps.versions.verdictOf(event);
      if (judged === "duplicate" && kind !== "daily") {
        left++;
        continue;
      }
      const copy = await deps.store.read(realm.realmId, entity, object.Id);
      // Our copy is behind QuickBooks'. Versions are compared as well as times: QuickBooks' times have
      // one-second resolution, so a change in the same second as an announced one hides behind it.
      const behind =
        event.operation === "Delete"
          ? copy !== undefined
          : copy === undefined || Number(copy.SyncToken ?? 0) < Number(object.SyncToken ?? 0);
      const newer = judged === "newer";
      // A daily run compares content too: a copy that differs was damaged outside the pipeline.
      const differs = kind === "daily" && event.operation !== "Delete" && !isDeepStrictEqual(copy, object);
      if (newer || (behind && judged !== "duplicate")) {
        // Not newer by time but behind by version: ordering would drop it as stale, so it goes as a
        // repair. So does a newer change of a damaged copy that is not behind: the processor would find
        // it no newer than the damage and leave it.
        if (newer && (behind || !differs)) events.push(event);
        else repair(entity, object);
        // No webhook brought it, though it is old enough to have: QuickBooks did not tell us.
        if (behind && !full && at <= graceStart) missed++;
      } else if (differs) {
        repair(entity, object);
      } else {
        left++;
      }
    }
  }
  for (const [entity, ids] of scan.vanished) {
    // A listing paged by offset skips a row when an earlier one goes away meanwhile: only what an
    // `Id IN` read no longer finds is gone. Gone with no trace CDC could show: deleted as of the
    // run's start, later than anything recorded for it, so ordering lets it through as newer.
    const still = ids.length > 0 ? await deps.quickbooks.readMany(realm.realmId, entity, ids) : new Map();
    const deletedAt = new Date(startedAt).toISOString();
    for (const id of ids) {
      if (still.has(id)) continue;
      const event = changeEventFromObject(realm.realmId, entity, {
        Id: id,
        status: "Deleted",
        MetaData: { LastUpdatedTime: deletedAt },
      });
      if (event) events.push(event);
    }
  }

  for (let i = 0; i < events.length; i += EVENTS_PER_MESSAGE) {
    if (!deps.stillLeader()) throw new Error("leadership lost during the CDC run; the next leader runs it again");
    const findings: CdcFindings = { realmId: realm.realmId, events: events.slice(i, i + EVENTS_PER_MESSAGE) };
    const body = encoder.encode(JSON.stringify(findings));
    await publishDurable(deps.client, Subjects.webhooks, body, {
      msgId: notificationMsgId(body),
      timeoutMs: 5000,
      headers: { [Headers.payloadForm]: "cdc" },
    });
  }
  deps.metrics.missed.inc(missed);
  deps.metrics.repairs.inc(repaired);
  await deps.registry.update(realm.realmId, (r) => {
    if (!r) return undefined;
    const { cdcProgress: _progress, cdcRequestedAt, ...rest } = r;
    return {
      ...rest,
      ...(cdcRequestedAt !== undefined && cdcRequestedAt > startedAt ? { cdcRequestedAt } : {}),
      verifiedUntil: Math.max(r.verifiedUntil ?? 0, startedAt - Math.max(MARGIN_MS, deps.missedGraceMs)),
      lastCdcAt: deps.now(),
      lastCdcResult: "succeeded",
      lastCdcSummary: { kind, found, published: events.length, missed, left, deferred, upTo },
      missedTotal: (r.missedTotal ?? 0) + missed,
      ...(full ? { lastFullSyncAt: deps.now() } : {}),
      ...(kind === "daily" ? { lastDailyCdcAt: startedAt } : {}),
    };
  });
  deps.logger.info(
    {
      realmId: realm.realmId,
      kind,
      full,
      since: since && new Date(since).toISOString(),
      found,
      published: events.length,
      missed,
      repaired,
      left,
      deferred,
    },
    "CDC run finished",
  );
}

/**
 * Where a run starts: the point up to which the realm was last verified (a daily run: from the
 * previous daily run, or the connection before the first, if earlier). Undefined means a full load: for a realm never
 * verified, whatever webhooks came first (a webhook says nothing of what existed before it), and
 * for one whose start lies beyond CDC's 30 days. Watermarks are not where it starts: a type quiet
 * for a month would turn every catch-up into a full load.
 */
function windowStart(realm: RealmRecord, kind: CdcKind, now: number): Date | undefined {
  if (realm.verifiedUntil === undefined) return undefined;
  let start = realm.verifiedUntil - MARGIN_MS;
  if (kind === "daily") start = Math.min(start, (realm.lastDailyCdcAt ?? realm.connectedAt) - MARGIN_MS);
  if (now - start > CDC_LOOKBACK_MS) return undefined;
  return new Date(start);
}

/** When a realm's daily CDC is due: once a day, at an hour of its own so realms spread over the day. */
export function nextDailyCdc(realm: RealmRecord): number {
  const offset = Number.parseInt(createHash("sha256").update(realm.realmId).digest("hex").slice(0, 8), 16) % DAY;
  const last = realm.lastDailyCdcAt ?? realm.connectedAt;
  const dayStart = last - (last % DAY);
  const slot = dayStart + offset;
  return slot > last ? slot : slot + DAY;
}
