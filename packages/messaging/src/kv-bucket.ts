import { StorageType } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsClient } from "./nats-client.js";
import { isWrongLastSequence } from "./publish-durable.js";

export type { KV, KvEntry } from "@nats-io/kv";

/** Opens a file-backed bucket, creating it if missing. */
export function openBucket(
  client: NatsClient,
  name: string,
  options: { replicas: number; history?: number },
): Promise<KV> {
  return new Kvm(client.js).create(name, {
    replicas: options.replicas,
    history: options.history ?? 1,
    storage: StorageType.File,
  });
}

/** Whether a compare-and-set write lost to another writer (the key's revision moved on). */
export function isRevisionConflict(err: unknown): boolean {
  return isWrongLastSequence(err);
}

/** A KV key from parts; characters keys may not hold are escaped as `=XX`, so any id fits. */
export function kvKey(...parts: readonly string[]): string {
  return parts
    .map((part) => part.replace(/[^A-Za-z0-9_-]/g, (ch) => `=${ch.charCodeAt(0).toString(16).padStart(2, "0")}`))
    .join(".");
}
