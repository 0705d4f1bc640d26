import { LEADER_KEY, LeaderRecord } from "@qbo-webhooks/contracts";
import { isRevisionConflict, type KV } from "@qbo-webhooks/messaging";
import type { LeaderLock } from "./leader-lock.js";

/** Leadership in NATS KV (`qbo-leases`, key `reconciler.leader`), for runs outside Kubernetes. */
export class KvLeaderLock implements LeaderLock {
  readonly description = "NATS KV qbo-leases/reconciler.leader";

  constructor(
    private readonly kv: KV,
    private readonly key = LEADER_KEY,
  ) {}

  async read(): Promise<{ record: LeaderRecord; version: string } | undefined> {
    const entry = await this.kv.get(this.key);
    if (!entry) return undefined;
    const record: LeaderRecord =
      entry.operation === "PUT" ? LeaderRecord.parse(entry.json()) : { holder: "", leaseMs: 0, transitions: 0 };
    return { record, version: String(entry.revision) };
  }

  async write(record: LeaderRecord, version: string | undefined): Promise<string | undefined> {
    try {
      const data = JSON.stringify(record);
      const revision =
        version === undefined
          ? await this.kv.create(this.key, data)
          : await this.kv.update(this.key, data, Number(version));
      return String(revision);
    } catch (err) {
      if (isRevisionConflict(err)) return undefined;
      throw err;
    }
  }
}
