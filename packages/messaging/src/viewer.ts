import type { ConsumerMessages, JetStreamClient, OrderedConsumerOptions } from "@nats-io/jetstream";

/**
 * How long the server keeps a viewer's consumer once nobody pulls from it. A viewer that pulls is
 * never idle this long (its pull requests wait on the server); one killed without closing leaves
 * its consumer behind for no longer than this.
 */
export const VIEWER_IDLE_MS = 5000;

/** What a viewer reads, and how it lets go. */
export interface Viewer {
  readonly messages: ConsumerMessages;
  /** Stops reading and deletes the consumer on the server at once. */
  close(): Promise<void>;
}

/**
 * Follows a stream as a viewer (`qbo-webhooks tail`, a command waiting for a change, a follower of
 * dead letters): an ordered consumer in memory that acknowledges nothing, deleted on `close` and
 * removed by the server `VIEWER_IDLE_MS` after a viewer that died. Viewers are never durable, so
 * the backlog the pipeline reports (its durable consumers') never counts them.
 */
export async function openViewer(
  js: JetStreamClient,
  stream: string,
  options: Partial<Omit<OrderedConsumerOptions, "inactive_threshold">>,
): Promise<Viewer> {
  const consumer = await js.consumers.get(stream, { ...options, inactive_threshold: VIEWER_IDLE_MS });
  const messages = await consumer.consume();
  return {
    messages,
    async close() {
      messages.stop();
      await consumer.delete().catch(() => false); // gone already: the server removed it, or NATS is
    },
  };
}
