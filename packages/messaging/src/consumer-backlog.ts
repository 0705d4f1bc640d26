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
      backlog.push({ stream, consumer: info.name, pending: info.num_pending + info.num_ack_pending });
    }
  }
  return backlog;
}
