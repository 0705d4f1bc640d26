import { compareText, RealmRecord } from "@qbo-webhooks/contracts";
import { type KV, kvKey, updateWithCas } from "@qbo-webhooks/messaging";

/** A realm's record as last seen by a follower, and when (monotonic ms). */
export interface FollowedRealm {
  readonly record: RealmRecord;
  readonly seenAt: number;
}

/** The realms as a watch keeps them up to date. */
export interface RealmFollower {
  list(): FollowedRealm[];
  /** The realm's record as last seen, if it has one. */
  get(realmId: string): RealmRecord | undefined;
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
   * `changed` hears of each realm whose record changed or went. Resolves once every record stored
   * when it was called is known: a processor must not take a paused company for a running one.
   */
  async follow(changed?: (realmId: string) => void): Promise<RealmFollower> {
    const stored = (await this.kv.status()).values;
    const watch = await this.kv.watch();
    const records = new Map<string, FollowedRealm>();
    let loaded = () => {};
    const initialized = new Promise<void>((resolve) => {
      loaded = resolve;
    });
    if (stored === 0) loaded();
    void (async () => {
      for await (const entry of watch) {
        const realmId = records.get(entry.key)?.record.realmId;
        if (entry.operation === "PUT") {
          const record = RealmRecord.parse(entry.json());
          records.set(entry.key, { record, seenAt: performance.now() });
          changed?.(record.realmId);
        } else {
          records.delete(entry.key);
          if (realmId !== undefined) changed?.(realmId);
        }
        // The last of the values stored when the watch began (none pending after it), or anything newer.
        if (entry.isUpdate || entry.delta === 0) loaded();
      }
      loaded();
    })();
    await initialized;
    return {
      list: () => [...records.values()].sort((a, b) => compareText(a.record.realmId, b.record.realmId)),
      get: (realmId) => records.get(kvKey(realmId))?.record,
      stop: () => watch.stop(),
    };
  }

  /** Forgets the realm's record (a company removed). */
  async remove(realmId: string): Promise<void> {
    await this.kv.purge(kvKey(realmId));
  }

  /** Every realm's record, read once (for one-shot callers such as the CLI). */
  async list(): Promise<RealmRecord[]> {
    // A key written while the listing runs can be listed twice: keep one record per realm.
    const realms = new Map<string, RealmRecord>();
    for await (const key of await this.kv.keys()) {
      const entry = await this.kv.get(key);
      if (entry?.operation === "PUT") realms.set(key, RealmRecord.parse(entry.json()));
    }
    return [...realms.values()].sort((a, b) => compareText(a.realmId, b.realmId));
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
