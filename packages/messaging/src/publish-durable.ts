import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { errors, headers as natsHeaders } from "@nats-io/transport-node";
import { injectTraceContext } from "@qbo-webhooks/observability";
import type { NatsClient } from "./nats-client.js";

export type PublishErrorCode =
  /** No PubAck within the deadline: the message may or may not be stored; publish again with the same id. */
  | "PUBLISH_TIMEOUT"
  /** Not connected, draining, or no JetStream answering: nothing was stored. */
  | "NATS_UNAVAILABLE"
  /** The server refused the message (too large, stream sealed, ...): retrying will not help. */
  | "PUBLISH_REJECTED"
  /**
   * The stream is at its size limit and refuses new messages (it never drops unprocessed ones to
   * make room): nothing was stored; retry once its consumers have caught up.
   */
  | "STREAM_FULL"
  /**
   * The server does not let this client publish to the subject (its NATS user's permissions): a
   * configuration error; nothing was stored, and nothing will be until the permissions are fixed.
   */
  | "PUBLISH_FORBIDDEN"
  /**
   * A fenced append found that someone else appended to the subject since this writer last did,
   * and this writer may no longer write (its lease lapsed): nothing was stored.
   */
  | "PUBLISH_FENCED";

export class PublishError extends Error {
  override name = "PublishError";
  constructor(
    readonly code: PublishErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface PublishOptions {
  /** The dedupe key: the stream stores one message per id within its duplicate window. */
  readonly msgId: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** How long to wait for the PubAck. */
  readonly timeoutMs: number;
  /** Store only if the subject's last message is at this stream sequence (0: the subject is empty). */
  readonly expectLastSubjectSeq?: number;
}

export interface Stored {
  readonly stream: string;
  readonly seq: number;
  /** The stream already held a message with this id: nothing new was stored. */
  readonly duplicate: boolean;
}

/**
 * Publishes to JetStream and resolves only once the stream has acknowledged storing the message,
 * with the current trace context in its headers.
 *
 * @throws {PublishError} with one of the codes above, as documented on each.
 */
export async function publishDurable(
  client: NatsClient,
  subject: string,
  payload: Uint8Array,
  options: PublishOptions,
): Promise<Stored> {
  if (!client.connected) throw new PublishError("NATS_UNAVAILABLE", "not connected to NATS");
  const hdrs = natsHeaders();
  for (const [key, value] of Object.entries(options.headers ?? {})) hdrs.set(key, value);
  injectTraceContext(hdrs);
  try {
    const ack = await client.js.publish(subject, payload, {
      msgID: options.msgId,
      headers: hdrs,
      timeout: options.timeoutMs,
      ...(options.expectLastSubjectSeq === undefined
        ? {}
        : { expect: { lastSubjectSequence: options.expectLastSubjectSeq } }),
    });
    return { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate };
  } catch (err) {
    throw toPublishError(err, options.timeoutMs);
  }
}

function toPublishError(err: unknown, timeoutMs: number): PublishError {
  // A request (the publish waits for its PubAck) fails with the server's permissions error as its cause.
  const violation = err instanceof Error && err.cause instanceof errors.PermissionViolationError ? err.cause : err;
  if (violation instanceof errors.PermissionViolationError) {
    return new PublishError("PUBLISH_FORBIDDEN", `not allowed to publish: ${violation.message}`, { cause: err });
  }
  if (err instanceof errors.TimeoutError) {
    return new PublishError("PUBLISH_TIMEOUT", `no PubAck within ${timeoutMs} ms`, { cause: err });
  }
  if (
    // No stream answers on the subject (the jetstream package does not export this class).
    (err instanceof Error && err.name === "JetStreamNotEnabled") ||
    err instanceof errors.ClosedConnectionError ||
    err instanceof errors.DrainingConnectionError ||
    err instanceof errors.ConnectionError ||
    err instanceof errors.RequestError
  ) {
    return new PublishError("NATS_UNAVAILABLE", `NATS unavailable: ${(err as Error).message}`, { cause: err });
  }
  if (isStreamFull(err)) {
    return new PublishError("STREAM_FULL", `the stream is full: ${(err as Error).message}`, { cause: err });
  }
  if (isWrongLastSequence(err)) {
    return new PublishError("PUBLISH_FENCED", `the subject moved on: ${(err as Error).message}`, { cause: err });
  }
  if (err instanceof JetStreamApiError || err instanceof errors.InvalidArgumentError) {
    return new PublishError("PUBLISH_REJECTED", `JetStream refused the message: ${err.message}`, { cause: err });
  }
  return new PublishError("NATS_UNAVAILABLE", `publish failed: ${String(err)}`, { cause: err });
}

/**
 * Whether the store, not the message, is at fault (NATS unreachable, no PubAck, the stream full, our
 * permissions):
 * the same message will be stored later, so it must wait, not count towards dead-lettering.
 */
export function isStorageUnavailable(err: unknown): boolean {
  return (
    err instanceof PublishError &&
    (err.code === "NATS_UNAVAILABLE" ||
      err.code === "PUBLISH_TIMEOUT" ||
      err.code === "STREAM_FULL" ||
      err.code === "PUBLISH_FORBIDDEN")
  );
}

// JSStreamStoreFailedF: the store refused the write; its description says why.
const STREAM_STORE_FAILED = 10077;

/** Whether JetStream refused a write because the stream reached its byte or message limit (discard new). */
function isStreamFull(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError && err.code === STREAM_STORE_FAILED && /maximum (bytes|messages)/.test(err.message)
  );
}

/** Whether JetStream refused a write because the expected last sequence did not match. */
export function isWrongLastSequence(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence ||
      err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}
