import { type DlqStage, Headers, Subjects } from "@qbo-webhooks/contracts";
import type { NatsClient } from "./nats-client.js";
import { publishDurable } from "./publish-durable.js";

export interface DeadLetterOptions {
  readonly stage: DlqStage;
  /** Why; stored as one line of at most 1,024 characters in `Qbo-Dlq-Reason`. */
  readonly reason: string;
  /** Stable for the failing message, so dead-lettering it twice stores one letter. */
  readonly msgId: string;
  readonly attempts?: number;
  /** The realm the message belongs to, when known: each company's dead letters are counted by it. */
  readonly realmId?: string;
  /** What replaying the letter needs besides its body (its payload form, webhook id, …). */
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * Stores a message in QBO_DLQ (`qbo.dlq.<stage>`) with the stage and the reason, and resolves once
 * it is stored: only then may the caller drop the original. Answers the reason as stored.
 *
 * @throws {PublishError} as `publishDurable`; the caller keeps the original and retries.
 */
export async function deadLetter(client: NatsClient, payload: Uint8Array, options: DeadLetterOptions): Promise<string> {
  const reason = options.reason.replace(/[\r\n]+/g, " ").slice(0, 1024);
  await publishDurable(client, Subjects.dlq(options.stage), payload, {
    msgId: options.msgId,
    timeoutMs: 5000,
    headers: {
      ...options.headers,
      [Headers.dlqStage]: options.stage,
      [Headers.dlqReason]: reason,
      ...(options.attempts === undefined ? {} : { [Headers.attempts]: String(options.attempts) }),
      ...(options.realmId === undefined ? {} : { [Headers.realmId]: options.realmId }),
    },
  });
  return reason;
}
