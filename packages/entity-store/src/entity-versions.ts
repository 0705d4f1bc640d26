import type { ChangeEvent } from "@qbo-webhooks/contracts";
import { KnownEntries, type KV, kvKey } from "@qbo-webhooks/messaging";
import { z } from "zod";

export type Verdict = "newer" | "duplicate" | "stale";

const Recorded = z.object({
  /** ms since the epoch of the newest change recorded for the entity. */
  at: z.number(),
  eventId: z.string(),
});
type Recorded = z.infer<typeof Recorded>;

/**
 * The newest change recorded per entity (KV `qbo-entity-versions`), so older and repeated events
 * are dropped. Writes are compare-and-set on the key's revision: ordering replicas may race.
 *
 * A process judges by what it last read or recorded of an entity, without reading it again. That
 * can be out of date only by another replica's later record, which makes "newer" of an event that
 * is not: the event is published once more (the processor finds its version no newer than our copy
 * and changes nothing), and recording it conflicts, so the later record stays. "Stale" and
 * "duplicate" are always right: records only move forward.
 */
export class EntityVersions {
  readonly #recorded: KnownEntries;

  constructor(private readonly kv: KV) {
    this.#recorded = new KnownEntries(kv);
  }

  /**
   * How `event` compares with what is recorded for its entity. A Merge also deletes the
   * merged-away entity, so it counts as newer when it is newer for either of the two: the
   * surviving entity may have changed again since, and its later change says nothing of the merge.
   */
  async judge(event: ChangeEvent): Promise<Verdict> {
    const [ownKey, mergedAwayKey] = versionKeysOf(event);
    const own = verdict(event, await this.#known(ownKey));
    if (own === "newer" || mergedAwayKey === undefined) return own;
    const mergedAway = verdict(event, await this.#known(mergedAwayKey));
    return mergedAway === "newer" ? "newer" : own;
  }

  /**
   * Records `event` as the entity's newest change unless something newer is recorded already; on
   * Merge the merged-away entity is recorded too, so late events about it are dropped.
   */
  async record(event: ChangeEvent): Promise<void> {
    for (const key of versionKeysOf(event)) await this.#advance(key, event);
  }

  async #advance(key: string, event: ChangeEvent): Promise<void> {
    const value: Recorded = { at: Date.parse(event.occurredAt), eventId: event.eventId };
    // Another replica may write first: the write conflicts, and it reads again and decides again.
    await this.#recorded.update(key, (current) =>
      current !== undefined && parseRecorded(current).at >= value.at ? undefined : JSON.stringify(value),
    );
  }

  /** How `event` compares with what is recorded for its own entity (no Merge rule), read now. */
  async verdictOf(event: ChangeEvent): Promise<Verdict> {
    const entry = await this.kv.get(kvKey(event.realmId, event.entity, event.id));
    return verdict(event, entry?.operation === "PUT" ? parseRecorded(entry.string()) : undefined);
  }

  async #known(key: string): Promise<Recorded | undefined> {
    const value = await this.#recorded.value(key);
    return value === undefined ? undefined : parseRecorded(value);
  }
}

/**
 * The keys an event's judgement reads and its record writes: its entity's, then on Merge the
 * merged-away entity's. Events with no key in common can be judged and recorded at once.
 */
export function versionKeysOf(event: ChangeEvent): [string] | [string, string] {
  const own = kvKey(event.realmId, event.entity, event.id);
  return event.deletedId ? [own, kvKey(event.realmId, event.entity, event.deletedId)] : [own];
}

function parseRecorded(value: string): Recorded {
  return Recorded.parse(JSON.parse(value));
}

/**
 * QuickBooks' times have one-second resolution, so a change in the same second as the recorded
 * one may be newer (its SyncToken, read by the processor, decides): it passes unless it is the
 * recorded event itself (same CloudEvents `id`, or for legacy and CDC events the same change).
 * A webhook time written to the second (the legacy `…:04-0700`, QBO.md §1a) is compared by the
 * second: it may be a change later in that second than one recorded as `…:04.657Z`. CDC times are
 * to the second as well, but a CDC run checks versions itself (realm-cdc), so they are compared as
 * they are: a re-found change in the same second stays "stale", not published again.
 */
export function verdict(event: ChangeEvent, recorded: Recorded | undefined): Verdict {
  if (!recorded) return "newer";
  const at = Date.parse(event.occurredAt);
  const unit = event.source === "webhook" && at % 1000 === 0 ? 1000 : 1;
  const [mine, theirs] = [Math.floor(at / unit), Math.floor(recorded.at / unit)];
  if (mine > theirs) return "newer";
  if (mine < theirs) return "stale";
  return event.eventId === recorded.eventId ? "duplicate" : "newer";
}
