import { Consumers, Headers, Streams, Subjects } from "@qbo-webhooks/contracts";
import { backoffMs, DurableConsumer, type JsMsg, type NatsClient, publishDurable } from "@qbo-webhooks/messaging";
import type { Logger } from "@qbo-webhooks/observability";
import { Counter, type Registry } from "prom-client";
import { Webhook } from "standardwebhooks";

export interface DeliveryOptions {
  readonly client: NatsClient;
  /** The app's endpoint. */
  readonly url: string;
  /** Standard Webhooks secret, `whsec_<base64>`. */
  readonly secret: string;
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly retryBaseMs: number;
  readonly registry: Registry;
  readonly logger: Logger;
}

/**
 * POSTs every applied change (QBO_CHANGES) to the app, signed per Standard Webhooks
 * (`webhook-id`, `webhook-timestamp`, `webhook-signature`). A consumer of its own, not part of
 * applying: a failed POST is retried with backoff without applying anything again, and after
 * `maxAttempts` the change goes to `qbo.dlq.delivery` with the reason.
 */
export class ChangeDelivery {
  private constructor(private readonly consumer: DurableConsumer) {}

  static async start(options: DeliveryOptions): Promise<ChangeDelivery> {
    const webhook = new Webhook(options.secret);
    const attempts =
      (options.registry.getSingleMetric("qbo_delivery_attempts_total") as Counter<"result"> | undefined) ??
      new Counter({
        name: "qbo_delivery_attempts_total",
        help: "POSTs of applied changes to the app, by result.",
        labelNames: ["result"],
        registers: [options.registry],
      });
    const handle = async (msg: JsMsg) => {
      // The change's own msg id: the same across retries, so the app can deduplicate.
      const id = msg.headers?.get(Headers.msgId) || `${Streams.changes.name}-${msg.seq}`;
      const body = msg.string();
      const now = new Date();
      let problem: string;
      try {
        const response = await fetch(options.url, {
          method: "POST",
          body,
          signal: AbortSignal.timeout(options.timeoutMs),
          headers: {
            "content-type": "application/json",
            "webhook-id": id,
            "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
            "webhook-signature": webhook.sign(id, now, body),
          },
        });
        await response.arrayBuffer();
        if (response.ok) {
          attempts.inc({ result: "delivered" });
          msg.ack();
          return;
        }
        problem = `the app answered ${response.status}`;
      } catch (err) {
        problem = `no answer: ${(err as Error).message}`;
      }
      const attempt = msg.info.deliveryCount;
      if (attempt < options.maxAttempts) {
        attempts.inc({ result: "failed" });
        msg.nak(backoffMs(attempt, options.retryBaseMs, 60 * options.retryBaseMs));
        return;
      }
      await publishDurable(options.client, Subjects.dlq("delivery"), msg.data, {
        msgId: `delivery-${id}`,
        timeoutMs: 5000,
        headers: { [Headers.dlqStage]: "delivery", [Headers.dlqReason]: problem, "Qbo-Attempts": String(attempt) },
      });
      attempts.inc({ result: "dead_lettered" });
      options.logger.error({ id, reason: problem, attempts: attempt }, "change delivery dead-lettered");
      msg.term(problem);
    };
    const consumer = await DurableConsumer.start(options.client, {
      stream: Streams.changes.name,
      durable: Consumers.delivery,
      ackWaitMs: options.timeoutMs + 10_000,
      batch: 16,
      logger: options.logger,
      handle,
    });
    return new ChangeDelivery(consumer);
  }

  stop(): Promise<void> {
    return this.consumer.stop();
  }
}
