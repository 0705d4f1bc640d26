import { type AppliedChange, Headers, Streams, Subjects } from "@qbo-webhooks/contracts";
import { FencedAppender, type NatsClient } from "@qbo-webhooks/messaging";

const PUBLISH_TIMEOUT_MS = 5000;
const encoder = new TextEncoder();

/**
 * Where an applied change goes, in this order and before our copy records it: the feed
 * (QBO_CHANGES) and, when the app takes deliveries, its realm's delivery queue (QBO_DELIVERIES),
 * numbered 1, 2, 3, … per realm. Both appends are fenced by the partition's lease: once the next
 * holder has appended to a subject, this holder cannot (`PUBLISH_FENCED`), so a paused holder
 * never puts an older version after a newer one.
 */
export class ChangeOutputs {
  readonly #feed: FencedAppender;
  readonly #queue: FencedAppender;

  constructor(
    client: NatsClient,
    private readonly partition: number,
    mayWrite: () => boolean,
    private readonly delivery: { queued(realmId: string): void } | undefined,
  ) {
    this.#feed = new FencedAppender(client, Streams.changes.name, mayWrite);
    this.#queue = new FencedAppender(client, Streams.deliveries.name, mayWrite);
  }

  /** @throws {PublishError} when a change could not be stored (then the copy must not record it). */
  async publish(change: AppliedChange): Promise<void> {
    const msgId = changeMsgId(change);
    const payload = encoder.encode(JSON.stringify(change));
    await this.#feed.append(Subjects.changes(change.realmId, change.entity), () => ({
      payload,
      options: { msgId, timeoutMs: PUBLISH_TIMEOUT_MS },
    }));
    if (!this.delivery) return;
    await this.#queue.append(Subjects.deliveries(this.partition, change.realmId), (last) => ({
      payload,
      options: {
        msgId,
        timeoutMs: PUBLISH_TIMEOUT_MS,
        headers: { [Headers.realmSequence]: String(Number(last?.header(Headers.realmSequence) ?? 0) + 1) },
      },
    }));
    this.delivery.queued(change.realmId);
  }
}

/**
 * One id per entity version, and one for its deletion (QuickBooks never reuses an id, and a
 * webhook and CDC may state a deletion's time differently): the same change published again is
 * stored once, and it is the `webhook-id` the app deduplicates deliveries by.
 */
export function changeMsgId(change: AppliedChange): string {
  return `${change.realmId}.${change.entity}.${change.id}.${change.version ? `v${change.version.syncToken}` : "gone"}`;
}
