import type { ChangeEvent } from "@qbo-webhooks/contracts";
import { type KV, type KvEntry, kvKey, updateWithCas } from "@qbo-webhooks/messaging";
import { z } from "zod";

export type Verdict = "newer" | "duplicate" | "stale";

/** A verdict, and the entries read to reach it: `record` writes over them without reading them again. */
export interface Judged {
  readonly verdict: Verdict;
  readonly read: ReadonlyMap<string, KvEntry | null>;
}

const Recorded = z.object({
  /** ms since the epoch of the newest change recorded for the entity. */
  at: z.number(),
  eventId: z.string(),
});
type Recorded = z.infer<typeof Recorded>;

/**
 * The newest change recorded per entity (KV `qbo-entity-versions`), so older and repeated events
 * are dropped. Writes are compare-and-set on the key's revision: ordering replicas may race.
 */
export class EntityVersions {
  constructor(private readonly kv: KV) {}

  /**
   * How `event` compares with what is recorded for its entity. A Merge also deletes the
   * merged-away entity, so it counts as newer when it is newer for either of the two: the
   * surviving entity may have changed again since, and its later change says nothing of the merge.
   */
  async judge(event: ChangeEvent): Promise<Judged> {
    const read = new Map<string, KvEntry | null>();
    const own = verdict(event, await this.#read(event.realmId, event.entity, event.id, read));
    if (own === "newer" || !event.deletedId) return { verdict: own, read };
    const mergedAway = verdict(event, await this.#read(event.realmId, event.entity, event.deletedId, read));
    return { verdict: mergedAway === "newer" ? "newer" : own, read };
  }

  /**
   * Records `event` as the entity's newest change unless something newer is recorded already; on
   * Merge the merged-away entity is recorded too, so late events about it are dropped. `judged`:
   * what `judge` read for it (one read less per entity).
   */
  async record(event: ChangeEvent, judged?: Judged): Promise<void> {
    await this.#advance(event.realmId, event.entity, event.id, event, judged);
    if (event.deletedId) await this.#advance(event.realmId, event.entity, event.deletedId, event, judged);
  }

  async #advance(realmId: string, entity: string, id: string, event: ChangeEvent, judged?: Judged): Promise<void> {
    const value: Recorded = { at: Date.parse(event.occurredAt), eventId: event.eventId };
    const key = kvKey(realmId, entity, id);
    // Another replica may write first: the loop reads again and decides again.
    await updateWithCas(
      this.kv,
      key,
      (current) => (current && Recorded.parse(current.json()).at >= value.at ? undefined : JSON.stringify(value)),
      judged?.read.get(key),
    );
  }

  /** How `event` compares with what is recorded for its own entity (no Merge rule). */
  async verdictOf(event: ChangeEvent): Promise<Verdict> {
    return verdict(event, await this.#read(event.realmId, event.entity, event.id));
  }

  /** What is recorded for the entity; the entry read is kept in `read` when given. */
  async #read(
    realmId: string,
    entity: string,
    id: string,
    read?: Map<string, KvEntry | null>,
  ): Promise<Recorded | undefined> {
    const key = kvKey(realmId, entity, id);
    const entry = await this.kv.get(key);
    read?.set(key, entry);
    return entry?.operation === "PUT" ? Recorded.parse(entry.json()) : undefined;
  }
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
