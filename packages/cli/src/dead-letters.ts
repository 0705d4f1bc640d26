import {
  AppliedChange,
  ChangeEvent,
  Headers,
  notificationMsgId,
  partitionOf,
  Streams,
  Subjects,
} from "@qbo-webhooks/contracts";
import { type NatsClient, publishDurable } from "@qbo-webhooks/messaging";

export interface DeadLetter {
  readonly seq: number;
  readonly subject: string;
  readonly stage: string;
  readonly reason: string;
  readonly attempts?: string;
  readonly storedAt: string;
  readonly bytes: number;
  readonly body: string;
}

/** Dead letters in QBO_DLQ, oldest first; `stage` narrows to one (`ingress`, `ordering`, `processor`). */
export async function listDeadLetters(client: NatsClient, stage?: string): Promise<DeadLetter[]> {
  const info = await client.jsm.streams.info(Streams.dlq.name);
  const letters: DeadLetter[] = [];
  if (info.state.messages === 0) return letters;
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const letter = await readDeadLetter(client, seq);
    if (letter && (!stage || letter.stage === stage)) letters.push(letter);
  }
  return letters;
}

export async function readDeadLetter(client: NatsClient, seq: number): Promise<DeadLetter | undefined> {
  const msg = await client.jsm.streams.getMessage(Streams.dlq.name, { seq }).catch(() => null);
  if (!msg) return undefined;
  const attempts = msg.header.get("Qbo-Attempts");
  return {
    seq,
    subject: msg.subject,
    stage: msg.header.get(Headers.dlqStage) || msg.subject.split(".").at(-1) || "",
    reason: msg.header.get(Headers.dlqReason),
    ...(attempts ? { attempts } : {}),
    storedAt: msg.time.toISOString(),
    bytes: msg.data.length,
    body: msg.string(),
  };
}

/**
 * Sends a dead letter back where it failed — notifications to `qbo.webhooks`, change events to
 * their realm's partition, undelivered changes to QBO_CHANGES — and removes it from QBO_DLQ once
 * stored there.
 *
 * @throws {Error} when the dead letter does not exist or cannot be routed.
 */
export async function replayDeadLetter(client: NatsClient, seq: number, partitions: number): Promise<string> {
  const letter = await readDeadLetter(client, seq);
  if (!letter) throw new Error(`no dead letter ${seq} in ${Streams.dlq.name}`);
  const body = new TextEncoder().encode(letter.body);
  let subject: string;
  let msgId: string;
  if (letter.stage === "processor") {
    const event = ChangeEvent.parse(JSON.parse(letter.body));
    subject = Subjects.events(partitionOf(event.realmId, partitions), event.realmId);
    msgId = `replay-${seq}-${event.eventId}`;
  } else if (letter.stage === "delivery") {
    // Back into the feed: the delivery consumer posts it again.
    const change = AppliedChange.parse(JSON.parse(letter.body));
    subject = Subjects.changes(change.realmId, change.entity);
    msgId = `replay-${seq}`;
  } else {
    subject = Subjects.webhooks;
    // A new id, or the stream would take the replay for the duplicate of the original.
    msgId = `replay-${seq}-${notificationMsgId(body)}`;
  }
  await publishDurable(client, subject, body, {
    msgId,
    timeoutMs: 5000,
    headers: { [Headers.receivedAt]: new Date().toISOString() },
  });
  await client.jsm.streams.deleteMessage(Streams.dlq.name, seq);
  return subject;
}
