import {
  AppliedChange,
  ChangeEvent,
  Headers,
  notificationMsgId,
  PARTITIONS_METADATA,
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
  /** What replaying needs besides the body: the payload form, the delivery's webhook id and realm sequence. */
  readonly headers: Readonly<Record<string, string>>;
}

/** Headers a dead letter keeps for its replay. */
const REPLAY_HEADERS = [Headers.payloadForm, Headers.webhookId, Headers.realmSequence] as const;

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
    headers: Object.fromEntries(
      REPLAY_HEADERS.flatMap((name) => (msg.header.get(name) ? [[name, msg.header.get(name)]] : [])),
    ),
  };
}

/**
 * How many partitions the running system routes realms to, as ordering and the processors pinned
 * it on QBO_EVENTS.
 *
 * @throws {Error} when no service has set the stream up yet.
 */
export async function systemPartitions(client: NatsClient): Promise<number> {
  const info = await client.jsm.streams.info(Streams.events.name).catch(() => undefined);
  const partitions = Number(info?.config.metadata?.[PARTITIONS_METADATA]);
  if (!Number.isInteger(partitions) || partitions < 1)
    throw new Error(`${Streams.events.name} does not say how many partitions it has: start ordering once, then replay`);
  return partitions;
}

/**
 * Sends a dead letter back to the stage that failed, with the headers that stage needs:
 * notifications (and CDC findings, with their payload form) to `qbo.webhooks`; change events to
 * their realm's partition; undelivered changes to their realm's delivery replays, keeping their
 * `webhook-id` and realm sequence (delivered unless a newer version of the entity exists by then).
 * Removes the letter from QBO_DLQ once stored there. Replaying a letter twice stores it once.
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
    const change = AppliedChange.parse(JSON.parse(letter.body));
    subject = Subjects.deliveryReplays(partitionOf(change.realmId, partitions), change.realmId);
    msgId = `replay-${seq}`;
  } else {
    subject = Subjects.webhooks;
    // A new id, or the stream would take the replay for the duplicate of the original.
    msgId = `replay-${seq}-${notificationMsgId(body)}`;
  }
  await publishDurable(client, subject, body, {
    msgId,
    timeoutMs: 5000,
    headers: { ...letter.headers, [Headers.receivedAt]: new Date().toISOString() },
  });
  await client.jsm.streams.deleteMessage(Streams.dlq.name, seq);
  return subject;
}
