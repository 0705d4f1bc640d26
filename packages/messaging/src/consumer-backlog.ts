import type { NatsClient } from "./nats-client.js";

/** One durable consumer's backlog: messages not delivered yet plus those delivered and not acknowledged. */
export interface ConsumerBacklog {
  readonly stream: string;
  readonly consumer: string;
  readonly pending: number;
}

/** The backlog of every durable consumer of the named streams. */
export async function consumerBacklog(client: NatsClient, streams: readonly string[]): Promise<ConsumerBacklog[]> {
  const backlog: ConsumerBacklog[] = [];
  for (const stream of streams) {
    for await (const info of client.jsm.consumers.list(stream)) {
      // Viewers (tail, a CLI waiting for a change) read without taking work: not backlog.
      if (info.config.durable_name === undefined) continue;
      backlog.push({ stream, consumer: info.name, pending: info.num_pending + info.num_ack_pending });
    }
  }
  return backlog;
}

/**
 * How long the oldest message of a stream has waited, in seconds (0 when it holds none): in a
 * work-queue stream the first message is the oldest unprocessed. Server time against wall time.
 */
export function oldestWaitingSeconds(state: { messages: number; first_ts: string }): number {
  return state.messages > 0 ? Math.max(0, (Date.now() - Date.parse(state.first_ts)) / 1000) : 0;
}
