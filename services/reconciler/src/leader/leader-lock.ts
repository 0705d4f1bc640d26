import type { LeaderRecord } from "@qbo-webhooks/contracts";

/**
 * Where leadership is recorded: a Kubernetes Lease or a NATS KV key. Every write is
 * compare-and-set on the version read, so two candidates never both win one round.
 */
export interface LeaderLock {
  /** The record and its version (changes with every write), or undefined when none exists. */
  read(): Promise<{ record: LeaderRecord; version: string } | undefined>;
  /** Writes `record` if the stored version is still `version` (undefined: create); the new version, or undefined when another writer came first. */
  write(record: LeaderRecord, version: string | undefined): Promise<string | undefined>;
  /** A human-readable name for logs. */
  readonly description: string;
}
