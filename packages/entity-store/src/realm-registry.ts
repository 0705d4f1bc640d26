import { RealmRecord } from "@qbo-webhooks/contracts";
import { isRevisionConflict, type KV, kvKey } from "@qbo-webhooks/messaging";

/** Connected companies in KV `qbo-realms`: one record per realm, changed by compare-and-set. */
export class RealmRegistry {
  constructor(private readonly kv: KV) {}

  async get(realmId: string): Promise<RealmRecord | undefined> {
    const entry = await this.kv.get(kvKey(realmId));
    return entry?.operation === "PUT" ? RealmRecord.parse(entry.json()) : undefined;
  }

  async list(): Promise<RealmRecord[]> {
    // A key written while the listing runs can be listed twice: keep one record per realm.
    const realms = new Map<string, RealmRecord>();
    for await (const key of await this.kv.keys()) {
      const entry = await this.kv.get(key);
      if (entry?.operation === "PUT") realms.set(key, RealmRecord.parse(entry.json()));
    }
    return [...realms.values()].sort((a, b) => a.realmId.localeCompare(b.realmId));
  }

  /**
   * Applies `change` to the realm's record (undefined: none yet) and stores the result, retrying
   * when another writer came first; `change` answering undefined leaves the record as it is.
   */
  async update(
    realmId: string,
    change: (current: RealmRecord | undefined) => RealmRecord | undefined,
  ): Promise<RealmRecord | undefined> {
    const key = kvKey(realmId);
    for (;;) {
      const entry = await this.kv.get(key);
      const current = entry?.operation === "PUT" ? RealmRecord.parse(entry.json()) : undefined;
      const next = change(current);
      if (!next) return current;
      const data = JSON.stringify(RealmRecord.parse(next));
      try {
        if (entry) await this.kv.update(key, data, entry.revision);
        else await this.kv.create(key, data);
        return next;
      } catch (err) {
        if (!isRevisionConflict(err)) throw err;
      }
    }
  }
}
