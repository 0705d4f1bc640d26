import { RealmRecord } from "@qbo-webhooks/contracts";
import { type KV, kvKey, updateWithCas } from "@qbo-webhooks/messaging";

/** A realm's record as last seen by a follower, and when (monotonic ms). */
export interface FollowedRealm {
  readonly record: RealmRecord;
  readonly seenAt: number;
}

/** The realms as a watch keeps them up to date. */
export interface RealmFollower {
  list(): FollowedRealm[];
  stop(): void;
}

/** Connected companies in KV `qbo-realms`: one record per realm, changed by compare-and-set. */
export class RealmRegistry {
  constructor(private readonly kv: KV) {}

  async get(realmId: string): Promise<RealmRecord | undefined> {
    const entry = await this.kv.get(kvKey(realmId));
    return entry?.operation === "PUT" ? RealmRecord.parse(entry.json()) : undefined;
  }

  /**
   * Follows every realm's record as it changes, through one watch for as long as it runs (a
   * process that lists the realms every few seconds would leave a consumer on the server each time).
   */
  async follow(): Promise<RealmFollower> {
    const watch = await this.kv.watch();
    const records = new Map<string, FollowedRealm>();
    void (async () => {
      for await (const entry of watch) {
        if (entry.operation === "PUT")
          records.set(entry.key, { record: RealmRecord.parse(entry.json()), seenAt: performance.now() });
        else records.delete(entry.key);
      }
    })();
    return {
      list: () => [...records.values()].sort((a, b) => a.record.realmId.localeCompare(b.record.realmId)),
      stop: () => watch.stop(),
    };
  }

  /** Every realm's record, read once (for one-shot callers such as the CLI). */
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
    let result: RealmRecord | undefined;
    await updateWithCas(this.kv, kvKey(realmId), (entry) => {
      const current = entry ? RealmRecord.parse(entry.json()) : undefined;
      const next = change(current);
      result = next ?? current;
      return next && JSON.stringify(RealmRecord.parse(next));
    });
    return result;
  }
}
