import { isDeepStrictEqual } from "node:util";
import { parseQboTimestamp } from "@qbo-webhooks/contracts";
import { isRevisionConflict, type KV, kvKey } from "@qbo-webhooks/messaging";
import type { QboObject } from "@qbo-webhooks/quickbooks";

/**
 * Our copy of every entity (KV `qbo-entities`) and how far each realm and entity type has been
 * processed (KV `qbo-watermarks`, where CDC catch-up starts). Writes are compare-and-set, and a
 * copy is replaced only by a newer one, so replays and races change nothing.
 */
export class EntityStore {
  constructor(
    private readonly entities: KV,
    private readonly watermarksKv: KV,
  ) {}

  /** Stores `data` unless the stored copy is as new or newer; answers whether it stored it. */
  async applyIfNewer(realmId: string, entity: string, data: QboObject): Promise<boolean> {
    const key = kvKey(realmId, entity, data.Id);
    for (;;) {
      const current = await this.entities.get(key);
      const stored = current?.operation === "PUT" ? current.json<QboObject>() : undefined;
      if (stored && !isNewer(data, stored)) return false;
      try {
        if (current) await this.entities.update(key, JSON.stringify(data), current.revision);
        else await this.entities.create(key, JSON.stringify(data));
        return true;
      } catch (err) {
        if (!isRevisionConflict(err)) throw err;
      }
    }
  }

  /** Our copy of one entity, if we have it. */
  async read(realmId: string, entity: string, id: string): Promise<QboObject | undefined> {
    const entry = await this.entities.get(kvKey(realmId, entity, id));
    return entry?.operation === "PUT" ? entry.json<QboObject>() : undefined;
  }

  /** Stores `data` whatever the stored copy says (a repair); answers whether the copy changed. */
  async replace(realmId: string, entity: string, data: QboObject): Promise<boolean> {
    const stored = await this.read(realmId, entity, data.Id);
    if (stored && isDeepStrictEqual(stored, data)) return false;
    await this.entities.put(kvKey(realmId, entity, data.Id), JSON.stringify(data));
    return true;
  }

  /** The ids of every entity our copy holds for the realm, by entity type (one listing of the bucket). */
  async idsByType(realmId: string): Promise<Map<string, Set<string>>> {
    const byType = new Map<string, Set<string>>();
    const prefix = `${kvKey(realmId)}.`;
    for await (const key of await this.entities.keys(`${prefix}>`)) {
      const [entity = "", id = ""] = key.slice(prefix.length).split(".");
      byType.set(entity, (byType.get(entity) ?? new Set()).add(unescapeKeyPart(id)));
    }
    return byType;
  }

  /** The realm's watermark per entity type: the newest event time processed. */
  async watermarks(realmId: string): Promise<Map<string, number>> {
    const marks = new Map<string, number>();
    const prefix = `${kvKey(realmId)}.`;
    for await (const key of await this.watermarksKv.keys(`${prefix}*`)) {
      const entry = await this.watermarksKv.get(key);
      if (entry?.operation === "PUT") marks.set(unescapeKeyPart(key.slice(prefix.length)), Date.parse(entry.string()));
    }
    return marks;
  }

  /** Removes the copy of a deleted (or merged-away) entity; answers whether there was one. */
  async remove(realmId: string, entity: string, id: string): Promise<boolean> {
    const key = kvKey(realmId, entity, id);
    const current = await this.entities.get(key);
    if (current?.operation !== "PUT") return false;
    try {
      await this.entities.delete(key, { previousSeq: current.revision });
    } catch (err) {
      if (!isRevisionConflict(err)) throw err;
      return this.remove(realmId, entity, id); // changed meanwhile: look again
    }
    return true;
  }

  /** Moves the (realm, entity type) watermark forward to `occurredAt`; never back. */
  async advanceWatermark(realmId: string, entity: string, occurredAt: string): Promise<void> {
    const key = kvKey(realmId, entity);
    for (;;) {
      const current = await this.watermarksKv.get(key);
      if (current?.operation === "PUT" && Date.parse(current.string()) >= Date.parse(occurredAt)) return;
      try {
        if (current) await this.watermarksKv.update(key, occurredAt, current.revision);
        else await this.watermarksKv.create(key, occurredAt);
        return;
      } catch (err) {
        if (!isRevisionConflict(err)) throw err;
      }
    }
  }
}

/** Later LastUpdatedTime wins; QuickBooks times have one-second resolution, so a tie goes to the higher SyncToken. */
function isNewer(candidate: QboObject, stored: QboObject): boolean {
  const time = (o: QboObject) =>
    parseQboTimestamp(String((o.MetaData as { LastUpdatedTime?: unknown })?.LastUpdatedTime ?? ""));
  const [a, b] = [time(candidate), time(stored)];
  if (!Number.isNaN(a) && !Number.isNaN(b) && a !== b) return a > b;
  return Number(candidate.SyncToken ?? 0) > Number(stored.SyncToken ?? 0);
}

/** Reverses `kvKey`'s escaping of one part. */
function unescapeKeyPart(part: string): string {
  return part.replace(/=([0-9a-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}
