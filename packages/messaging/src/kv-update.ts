import type { KV, KvEntry } from "@nats-io/kv";
import { LRUCache } from "lru-cache";
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

/** Keys a process keeps the last known entry of, unless told otherwise; past it the least recently used is read again. */
const KNOWN_KEYS = 10_000;

/** A key's value as last read or written (undefined: missing or deleted), and the revision to write over (none: missing). */
interface Known {
  readonly value: string | undefined;
  readonly revision: number | undefined;
}

/**
 * Compare-and-set writes to keys this process is usually the only one to write (a partition's
 * watermarks and delivery cursors, a realm's call budget, the versions ordering records): it keeps
 * what it last read or wrote of each key, and the next write goes over that without reading the
 * key first. A write by anyone else in between makes that write conflict; then it reads and
 * decides again, as `updateWithCas` does. One KV round trip per write instead of two.
 */
export class KnownEntries {
  readonly #known: LRUCache<string, Known>;

  constructor(
    private readonly kv: KV,
    max = KNOWN_KEYS,
  ) {
    this.#known = new LRUCache({ max });
  }

  /**
   * The key's value as this process last read or wrote it, or as read now when it knows none. Only
   * this process's own writes keep it current: another writer's later value is not seen here.
   */
  async value(key: string): Promise<string | undefined> {
    const known = this.#known.get(key);
    if (known) return known.value;
    const entry = await this.kv.get(key);
    const value = entry?.operation === "PUT" ? entry.string() : undefined;
    this.#known.set(key, { value, revision: entry?.revision });
    return value;
  }

  /**
   * Writes what `next` makes of the key's value (undefined: missing or deleted), unless it answers
   * undefined. `next` first sees what this process knows, which may be out of date: then the write
   * conflicts, and `next` is asked again with what is stored. Answers whether it wrote.
   */
  async update(key: string, next: (current: string | undefined) => string | undefined): Promise<boolean> {
    const known = this.#known.get(key);
    if (known) {
      const value = next(known.value);
      if (value === undefined) return false;
      try {
        const revision =
          known.revision === undefined
            ? await this.kv.create(key, value)
            : await this.kv.update(key, value, known.revision);
        this.#known.set(key, { value, revision });
        return true;
      } catch (err) {
        // Whatever happened, what we knew of the key may be out of date now.
        this.#known.delete(key);
        if (!isRevisionConflict(err)) throw err;
      }
    }
    let written: string | undefined;
    const revision = await updateWithCas(this.kv, key, (entry) => (written = next(entry?.string())));
    if (revision === undefined || written === undefined) return false;
    this.#known.set(key, { value: written, revision });
    return true;
  }
}
