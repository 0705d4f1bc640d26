import { isDeepStrictEqual } from "node:util";
import {
  isRevisionConflict as isConflict,
  KnownEntries,
  type KV,
  type KvEntry,
  kvKey,
  updateWithCas,
} from "@qbo-webhooks/messaging";
import { isNewerVersion, StoredEntity } from "./entity-version.js";

/**
 * Called with a change before our copy records it: the change must be in the feed (and queued
 * for delivery) first, so a crash in between makes the next attempt announce it again (the feed
 * deduplicates) instead of finding the copy up to date and announcing nothing.
 */
export type Announce = () => Promise<void>;

/**
 * Our copy of every entity (KV `qbo-entities`) and how far each realm and entity type has been
 * applied (KV `qbo-watermarks`). Every write is compare-and-set and
 * comes after its announcement; a copy is replaced only by a newer one, so replays change nothing.
 */
export class EntityStore {
  /** A realm's watermarks are written by the holder of its partition alone: each over its last write. */
  readonly #watermarks: KnownEntries;

  constructor(
    private readonly entities: KV,
    watermarks: KV,
  ) {
    this.#watermarks = new KnownEntries(watermarks);
  }

  /**
   * Announces and then stores `data` unless the stored copy is as new or newer; answers whether
   * it announced it. When another writer changed the copy meanwhile, it judges again.
   */
  async applyIfNewer(
    realmId: string,
    entity: string,
    data: StoredEntity,
    announce: Announce,
    ahead?: ReadAhead,
  ): Promise<boolean> {
    const key = kvKey(realmId, entity, data.Id);
    return this.#announceThenStore(key, data, announce, (stored) => !isNewerVersion(data, stored), ahead?.take(key));
  }

  /** Announces and stores `data` whatever the stored copy says (a repair), unless the copy already equals it. */
  async replace(
    realmId: string,
    entity: string,
    data: StoredEntity,
    announce: Announce,
    ahead?: ReadAhead,
  ): Promise<boolean> {
    const key = kvKey(realmId, entity, data.Id);
    return this.#announceThenStore(key, data, announce, (stored) => isDeepStrictEqual(stored, data), ahead?.take(key));
  }

  /**
   * Reads our copies of several entities at once: the requests leave together (one write to the
   * socket instead of one each), and `applyIfNewer`/`replace` then write over what was read without
   * reading it again. A key changed meanwhile costs a conflict and a fresh read, nothing more.
   */
  async readAhead(
    realmId: string,
    refs: Iterable<{ readonly entity: string; readonly id: string }>,
  ): Promise<ReadAhead> {
    const keys = new Set([...refs].map(({ entity, id }) => kvKey(realmId, entity, id)));
    const entries = await Promise.all(
      [...keys].map(async (key): Promise<[string, KvEntry | null]> => [key, await this.entities.get(key)]),
    );
    return new ReadAhead(new Map(entries));
  }

  /**
   * Announces the removal of a deleted (or merged-away) entity, then removes our copy. The
   * tombstone is announced even when we hold no copy: the feed deduplicates a repeated one, and an
   * app that saw the entity from another source still learns it is gone.
   */
  async remove(realmId: string, entity: string, id: string, announce: Announce): Promise<void> {
    await announce();
    const key = kvKey(realmId, entity, id);
    for (;;) {
      const current = await this.entities.get(key);
      if (current?.operation !== "PUT") return;
      try {
        await this.entities.delete(key, { previousSeq: current.revision });
        return;
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
    }
  }

  /** Our copy of one entity, if we have it. */
  async read(realmId: string, entity: string, id: string): Promise<StoredEntity | undefined> {
    return parseEntity(await this.entities.get(kvKey(realmId, entity, id)));
  }

  /**
   * The ids of every entity our copy holds for the realm, by entity type: one listing of the
   * bucket (a consumer for its duration), only for a full resync.
   */
  async idsByType(realmId: string): Promise<Map<string, Set<string>>> {
    const byType = new Map<string, Set<string>>();
    const prefix = `${kvKey(realmId)}.`;
    for await (const key of await this.entities.keys(`${prefix}>`)) {
      const [entity = "", id = ""] = key.slice(prefix.length).split(".");
      byType.set(entity, (byType.get(entity) ?? new Set()).add(unescapeKeyPart(id)));
    }
    return byType;
  }

  /**
   * Moves the (realm, entity type) watermark forward to `occurredAt`; never back. Read only the first
   * time this store writes it, or after another writer moved it.
   */
  async advanceWatermark(realmId: string, entity: string, occurredAt: string): Promise<void> {
    await this.#watermarks.update(kvKey(realmId, entity), (current) =>
      current !== undefined && Date.parse(current) >= Date.parse(occurredAt) ? undefined : occurredAt,
    );
  }

  /**
   * Announces `data`, then stores it by compare-and-set, unless the stored copy makes it
   * `unneeded`; a conflicting writer makes it judge again (announcing once). Answers whether it announced.
   */
  async #announceThenStore(
    key: string,
    data: StoredEntity,
    announce: Announce,
    unneeded: (stored: StoredEntity) => boolean,
    alreadyRead: KvEntry | null | undefined,
  ): Promise<boolean> {
    let announced = false;
    await updateWithCas(
      this.entities,
      key,
      async (entry) => {
        const stored = parseEntity(entry ?? null);
        if (stored && unneeded(stored)) return undefined;
        if (!announced) await announce();
        announced = true;
        return JSON.stringify(data);
      },
      alreadyRead,
    );
    return announced;
  }
}

function parseEntity(entry: KvEntry | null): StoredEntity | undefined {
  if (entry?.operation !== "PUT") return undefined;
  return StoredEntity.parse(entry.json());
}

/** Reverses `kvKey`'s escaping of one part. */
function unescapeKeyPart(part: string): string {
  return part.replace(/=([0-9a-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/** Entries read ahead by `EntityStore.readAhead`, each used once: a second change of the same key reads afresh. */
export class ReadAhead {
  constructor(private readonly entries: Map<string, KvEntry | null>) {}

  take(key: string): KvEntry | null | undefined {
    const entry = this.entries.get(key);
    this.entries.delete(key);
    return entry;
  }
}
