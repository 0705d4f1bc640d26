import type { KV, KvEntry } from "@nats-io/kv";
import { isRevisionConflict } from "./kv-bucket.js";

/**
 * The one compare-and-set loop: reads `key`, asks `next` for its new value given what is stored
 * (a live entry, or undefined when missing or deleted), and writes it only if nobody wrote the key
 * meanwhile; when someone did, reads again and asks again (`next` may do work first, such as
 * publishing what the write will record). `next` answering undefined leaves the
 * key as it is. Answers the new revision, or undefined when nothing was written.
 */
export async function updateWithCas(
  kv: KV,
  key: string,
  next: (current: KvEntry | undefined) => string | undefined | Promise<string | undefined>,
  /** The key's entry as the caller just read it (null: none): saves the first read; if stale, it costs a conflict. */
  alreadyRead?: KvEntry | null,
): Promise<number | undefined> {
  for (let first = true; ; first = false) {
    const entry = first && alreadyRead !== undefined ? alreadyRead : await kv.get(key);
    const value = await next(entry?.operation === "PUT" ? entry : undefined);
    if (value === undefined) return undefined;
    try {
      return entry ? await kv.update(key, value, entry.revision) : await kv.create(key, value);
    } catch (err) {
      if (!isRevisionConflict(err)) throw err;
    }
  }
}
