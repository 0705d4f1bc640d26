import { setTimeout as sleep } from "node:timers/promises";
import {
  AckPolicy,
  type ConsumerMessages,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JsMsg,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import type { Logger } from "@qbo-webhooks/observability";
import { backoffMs } from "./backoff.js";
import type { NatsClient } from "./nats-client.js";

export interface DurableConsumerOptions {
  readonly stream: string;
  readonly durable: string;
  readonly filterSubjects?: readonly string[];
  /** How long a message may be in hand before JetStream redelivers it. */
  readonly ackWaitMs: number;
  /** Messages pulled ahead of processing. */
  readonly batch?: number;
  /** Handles one message and acks, naks or terms it; throwing naks it. */
  readonly handle: (msg: JsMsg) => Promise<void>;
  readonly logger: Logger;
}

/**
 * Pulls from a durable consumer (created if missing) and hands messages to `handle` one at a
 * time, in stream order. Replicas running the same durable share its messages.
 */
export class DurableConsumer {
  #messages: ConsumerMessages | undefined;
  #loop: Promise<void> = Promise.resolve();
  #stopping = false;

  private constructor(
    private readonly client: NatsClient,
    private readonly options: DurableConsumerOptions,
  ) {}

  static async start(client: NatsClient, options: DurableConsumerOptions): Promise<DurableConsumer> {
    const consumer = new DurableConsumer(client, options);
    await consumer.#ensure();
    await consumer.#begin();
    // Pulls pending on a server that restarted are gone, and a server that lost its store lost the
    // consumer too: start over after every reconnect rather than wait for missed heartbeats.
    client.onReconnect(() => consumer.#restart());
    return consumer;
  }

  /**
   * Stops pulling and waits for the message in hand. Messages already pulled but not handled are
   * handed back (nak) so another replica gets them now rather than after the ack wait.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    const deadline = performance.now() + 200;
    while (this.#messages && this.#messages.getPending() > 0 && performance.now() < deadline) await sleep(10);
    await this.#messages?.close();
    await this.#loop;
  }

  async #ensure(): Promise<void> {
    const { stream, durable, filterSubjects, ackWaitMs } = this.options;
    const config = {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(ackWaitMs),
      max_deliver: -1,
      ...(filterSubjects?.length ? { filter_subjects: [...filterSubjects] } : {}),
    };
    try {
      await this.client.jsm.consumers.info(stream, durable);
      await this.client.jsm.consumers.update(stream, durable, config);
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound)) throw err;
      await this.client.jsm.consumers.add(stream, config);
    }
  }

  async #restart(): Promise<void> {
    if (this.#stopping) return;
    await this.#messages?.close();
    await this.#loop;
    for (let attempt = 1; !this.#stopping; attempt++) {
      try {
        await this.#ensure();
        await this.#begin();
        return;
      } catch (err) {
        this.options.logger.warn(
          { err, attempt, durable: this.options.durable },
          "cannot resume consuming yet; retrying",
        );
        await sleep(backoffMs(attempt, 250, 5000));
      }
    }
  }

  async #begin(): Promise<void> {
    const consumer = await this.client.js.consumers.get(this.options.stream, this.options.durable);
    const messages = await consumer.consume({ max_messages: this.options.batch ?? 64 });
    this.#messages = messages;
    this.#loop = (async () => {
      try {
        for await (const msg of messages) {
          if (this.#stopping) {
            msg.nak();
            continue;
          }
          try {
            await this.options.handle(msg);
          } catch (err) {
            this.options.logger.error(
              { err, subject: msg.subject, seq: msg.seq },
              "message handling failed; redelivering",
            );
            msg.nak(1000);
          }
        }
      } catch (err) {
        // The consumer went away under us (deleted, or its server lost it): set it up again.
        this.options.logger.error({ err, durable: this.options.durable }, "consuming stopped; resuming");
        if (!this.#stopping) setTimeout(() => void this.#restart(), 1000).unref();
      }
    })();
  }
}
