import type { ChangeEvent } from "@qbo-webhooks/contracts";
import { isRevisionConflict, type KV, kvKey } from "@qbo-webhooks/messaging";

export type Verdict = "newer" | "duplicate" | "stale";

interface Recorded {
  /** ms since the epoch of the newest change recorded for the entity. */
  readonly at: number;
  readonly eventId: string;
}

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
  async judge(event: ChangeEvent): Promise<Verdict> {
    const own = verdict(event, (await this.#read(event.realmId, event.entity, event.id))?.value);
    if (own === "newer" || !event.deletedId) return own;
    const mergedAway = verdict(event, (await this.#read(event.realmId, event.entity, event.deletedId))?.value);
    return mergedAway === "newer" ? "newer" : own;
  }

  /**
   * Records `event` as the entity's newest change unless something newer is recorded already; on
   * Merge the merged-away entity is recorded too, so late events about it are dropped.
   */
  async record(event: ChangeEvent): Promise<void> {
    await this.#advance(event.realmId, event.entity, event.id, event);
    if (event.deletedId) await this.#advance(event.realmId, event.entity, event.deletedId, event);
  }

  async #advance(realmId: string, entity: string, id: string, event: ChangeEvent): Promise<void> {
    const key = kvKey(realmId, entity, id);
    const value: Recorded = { at: Date.parse(event.occurredAt), eventId: event.eventId };
    for (;;) {
      const current = await this.#read(realmId, entity, id);
      if (current && current.value.at >= value.at) return;
      try {
        const data = JSON.stringify(value);
        if (current) await this.kv.update(key, data, current.revision);
        else await this.kv.create(key, data);
        return;
      } catch (err) {
        if (!isRevisionConflict(err)) throw err;
        // Another replica wrote first: read again and decide again.
      }
    }
  }

  /** When the newest change recorded for the entity happened (ms since the epoch), if any. */
  async recordedAt(realmId: string, entity: string, id: string): Promise<number | undefined> {
    return (await this.#read(realmId, entity, id))?.value.at;
  }

  async #read(realmId: string, entity: string, id: string): Promise<{ value: Recorded; revision: number } | undefined> {
    const entry = await this.kv.get(kvKey(realmId, entity, id));
    if (entry?.operation !== "PUT") return undefined;
    return { value: entry.json<Recorded>(), revision: entry.revision };
  }
}

export function verdict(event: ChangeEvent, recorded: Recorded | undefined): Verdict {
  if (!recorded) return "newer";
  const at = Date.parse(event.occurredAt);
  if (at > recorded.at) return "newer";
  return at === recorded.at && event.eventId === recorded.eventId ? "duplicate" : "stale";
}
