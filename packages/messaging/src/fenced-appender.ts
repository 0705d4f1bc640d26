import type { NatsClient } from "./nats-client.js";
import { PublishError, type PublishOptions, publishDurable, type Stored } from "./publish-durable.js";

/** The last message of a subject as far as the appender knows: its stream sequence and headers. */
export interface LastAppended {
  readonly seq: number;
  header(name: string): string | undefined;
}

/** Reads at most this many times a subject that others keep appending to, then gives up. */
const MAX_TRIES = 3;
/**
 * Bound on remembered subjects; past it the memory starts again (each subject then costs one read).
 * An entry keeps the sequence and the headers only, never the payload.
 */
const MAX_REMEMBERED = 10_000;

/**
 * Appends to subjects that one writer at a time may write (the holder of a lease), so that a
 * writer that lost the lease without knowing it (paused by GC or SIGSTOP, cut off) cannot append
 * after its successor. Every append states the subject's last stream sequence as this writer last
 * saw it, and JetStream refuses the append if anyone appended since. After a refusal the writer
 * re-reads the subject and tries again only while `mayWrite()` says it still holds the lease; a
 * writer whose lease lapsed gets `PUBLISH_FENCED`. So the guarantee rests on the store, not on
 * timers: the successor's first append to a subject shuts the old holder out of it.
 */
export class FencedAppender {
  readonly #last = new Map<string, LastAppended>();

  constructor(
    private readonly client: NatsClient,
    private readonly stream: string,
    private readonly mayWrite: () => boolean,
  ) {}

  /**
   * Appends what `make` builds from the subject's last message (undefined when the subject is
   * empty). A duplicate (same `msgId` within the stream's window) stores nothing and leaves the
   * subject's last message as it was.
   *
   * @throws {PublishError} PUBLISH_FENCED when the lease lapsed, or others keep appending; the
   * codes of `publishDurable` otherwise.
   */
  async append(
    subject: string,
    make: (last: LastAppended | undefined) => { payload: Uint8Array; options: PublishOptions },
  ): Promise<Stored> {
    for (let attempt = 1; ; attempt++) {
      if (!this.mayWrite()) throw new PublishError("PUBLISH_FENCED", `no longer allowed to append to ${subject}`);
      const last = this.#last.get(subject) ?? (await this.#read(subject));
      const { payload, options } = make(last.seq === 0 ? undefined : last);
      try {
        const stored = await publishDurable(this.client, subject, payload, {
          ...options,
          expectLastSubjectSeq: last.seq,
        });
        if (!stored.duplicate) this.#remember(subject, lastOf(stored.seq, Object.entries(options.headers ?? {})));
        return stored;
      } catch (err) {
        // Whatever happened, what we knew of the subject may be out of date now.
        this.#last.delete(subject);
        if (!(err instanceof PublishError && err.code === "PUBLISH_FENCED") || attempt >= MAX_TRIES) throw err;
      }
    }
  }

  /** The subject's last message read from the stream, and remembered; sequence 0 when the subject is empty. */
  async #read(subject: string): Promise<LastAppended> {
    const msg = await this.client.jsm.streams.getMessage(this.stream, { last_by_subj: subject });
    const last = msg
      ? lastOf(
          msg.seq,
          msg.header.keys().map((name): [string, string] => [name, msg.header.get(name)]),
        )
      : EMPTY;
    this.#remember(subject, last);
    return last;
  }

  #remember(subject: string, last: LastAppended): void {
    if (this.#last.size >= MAX_REMEMBERED) this.#last.clear();
    this.#last.set(subject, last);
  }
}

const EMPTY: LastAppended = { seq: 0, header: () => undefined };

/** A copy of what the next append needs: held in memory for many subjects, so not the message itself. */
function lastOf(seq: number, headers: Iterable<[string, string]>): LastAppended {
  const values = new Map(headers);
  return { seq, header: (name) => values.get(name) || undefined };
}
