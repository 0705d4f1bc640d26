import { StorageType } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { nanos } from "@nats-io/transport-node";
import { BucketLimits, type BucketName } from "@qbo-webhooks/contracts";
import type { NatsClient } from "./nats-client.js";
import { isWrongLastSequence } from "./publish-durable.js";

export type { KV, KvEntry } from "@nats-io/kv";

/**
 * Opens a file-backed bucket with its limits (`BucketLimits`), creating it if missing, and applies
 * the limits to a bucket an older version created without them.
 */
export async function openBucket(client: NatsClient, name: BucketName, options: { replicas: number }): Promise<KV> {
  const limits = BucketLimits[name];
  const history = limits.history ?? 1;
  const maxAgeNanos = nanos(limits.ttlMs ?? 0);
  const kv = await new Kvm(client.js).create(name, {
    replicas: options.replicas,
    history,
    storage: StorageType.File,
    max_bytes: limits.maxBytes,
    maxValueSize: limits.maxValueSize,
    ttl: limits.ttlMs ?? 0,
  });
  // A bucket made by an older version keeps its old settings through create: bring them up to date.
  const stream = `KV_${name}`;
  const { config } = await client.jsm.streams.info(stream);
  if (
    config.max_bytes !== limits.maxBytes ||
    config.max_msg_size !== limits.maxValueSize ||
    config.max_msgs_per_subject !== history ||
    config.max_age !== maxAgeNanos
  )
    await client.jsm.streams.update(stream, {
      ...config,
      max_bytes: limits.maxBytes,
      max_msg_size: limits.maxValueSize,
      max_msgs_per_subject: history,
      max_age: maxAgeNanos,
    });
  return kv;
}

/** Whether a compare-and-set write lost to another writer (the key's revision moved on). */
/**
 * Removes every key of the bucket under `prefix` (`<prefix>.>`) with one stream purge: no
 * tombstones, and a permission on the bucket's stream purge only, not on writing its keys.
 * Answers how many stored values went.
 */
export async function purgeKeys(client: NatsClient, name: BucketName, prefix: string): Promise<number> {
  const { purged } = await client.jsm.streams.purge(`KV_${name}`, { filter: `$KV.${name}.${prefix}.>` });
  return purged;
}

export function isRevisionConflict(err: unknown): boolean {
  return isWrongLastSequence(err);
}

/** A KV key from parts; characters keys may not hold are escaped as `=XX`, so any id fits. */
export function kvKey(...parts: readonly string[]): string {
  return parts
    .map((part) => part.replace(/[^A-Za-z0-9_-]/g, (ch) => `=${ch.charCodeAt(0).toString(16).padStart(2, "0")}`))
    .join(".");
}
