import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
  type StreamInfo,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import type { StreamRetention, StreamSpec } from "@qbo-webhooks/contracts";
import type { Logger } from "@qbo-webhooks/observability";

export interface StreamPlacement {
  /** 1 for a single server, 3 in a cluster. */
  readonly replicas: number;
}

const RETENTION: Record<StreamRetention, { retention: RetentionPolicy; discard: DiscardPolicy }> = {
  work: { retention: RetentionPolicy.Workqueue, discard: DiscardPolicy.New },
  history: { retention: RetentionPolicy.Limits, discard: DiscardPolicy.Old },
  queue: { retention: RetentionPolicy.Limits, discard: DiscardPolicy.New },
};

/** The JetStream config a spec asks for: file storage, so a PubAck means the message is on disk. */
export function streamConfig(spec: StreamSpec, placement: StreamPlacement): Partial<StreamConfig> & { name: string } {
  return {
    name: spec.name,
    description: spec.description,
    subjects: [...spec.subjects],
    storage: StorageType.File,
    ...RETENTION[spec.retention],
    max_age: nanos(spec.maxAgeMs),
    max_bytes: spec.maxBytes,
    duplicate_window: nanos(spec.duplicateWindowMs),
    num_replicas: placement.replicas,
  };
}

// "stream name already in use": another replica created it between our look-up and our add.
const STREAM_NAME_IN_USE = 10058;

/** A stream already pins a setting to another value than this service was configured with. */
export class StreamPinError extends Error {
  override name = "StreamPinError";
}

/**
 * Creates the stream, or updates it when it differs from the spec. Safe to call from every replica
 * at every start and reconnect. `pins` are metadata every user of the stream must agree on (the
 * partition count): set by the first, and refused when another value is already set.
 *
 * JetStream cannot turn a stream into a work queue in place. A stream an older version created with
 * another retention is recreated (keeping its pins) once none of its consumers has anything
 * pending; until then it is left exactly as it is, so its work is neither dropped nor stalled, and
 * a later start converts it.
 *
 * @throws {StreamPinError} when the stream pins a key to another value.
 */
export async function ensureStream(
  jsm: JetStreamManager,
  spec: StreamSpec,
  placement: StreamPlacement,
  options: { readonly pins?: Readonly<Record<string, string>>; readonly logger?: Logger } = {},
): Promise<StreamInfo> {
  const { pins = {}, logger } = options;
  let current = await findStream(jsm, spec.name);
  if (current) checkPins(current, pins);
  const metadata = { ...current?.config.metadata, ...pins };
  const wanted = { ...streamConfig(spec, placement), metadata };
  if (current && current.config.retention !== wanted.retention) {
    const unprocessed = await unprocessedMessages(jsm, current);
    if (unprocessed > 0) {
      logger?.warn(
        { stream: spec.name, unprocessed, retention: current.config.retention },
        "stream has an older version's retention and unprocessed work: left as it is until a start finds it drained",
      );
      return current;
    }
    logger?.info({ stream: spec.name, from: current.config.retention }, "recreating a drained stream as a work queue");
    await jsm.streams.delete(spec.name).catch((err: unknown) => {
      if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err;
    });
    current = undefined;
  }
  if (!current) {
    try {
      return await jsm.streams.add(wanted);
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === STREAM_NAME_IN_USE)) throw err;
      current = await jsm.streams.info(spec.name);
      checkPins(current, pins);
    }
  }
  const config = current.config;
  const differs =
    Object.keys(pins).some((key) => config.metadata?.[key] === undefined) ||
    config.description !== wanted.description ||
    config.max_age !== wanted.max_age ||
    config.max_bytes !== wanted.max_bytes ||
    config.discard !== wanted.discard ||
    config.duplicate_window !== wanted.duplicate_window ||
    config.num_replicas !== wanted.num_replicas ||
    config.subjects.join(",") !== wanted.subjects?.join(",");
  return differs ? jsm.streams.update(spec.name, { ...config, ...wanted }) : current;
}

function checkPins(info: StreamInfo, pins: Readonly<Record<string, string>>): void {
  for (const [key, value] of Object.entries(pins)) {
    const pinned = info.config.metadata?.[key];
    if (pinned !== undefined && pinned !== value)
      throw new StreamPinError(`${info.config.name} is set up with ${key}=${pinned}, but this service has ${value}`);
  }
}

/**
 * Messages of the stream that may not be processed yet: those some consumer still has pending, and
 * every message on a subject no consumer covers (nobody has read it).
 */
async function unprocessedMessages(jsm: JetStreamManager, info: StreamInfo): Promise<number> {
  const filters: string[] = [];
  let pending = 0;
  for await (const consumer of jsm.consumers.list(info.config.name)) {
    pending += consumer.num_pending + consumer.num_ack_pending;
    const { filter_subject, filter_subjects } = consumer.config;
    const own = [...(filter_subjects ?? []), ...(filter_subject ? [filter_subject] : [])];
    filters.push(...(own.length ? own : [">"]));
  }
  const { state } = await jsm.streams.info(info.config.name, { subjects_filter: ">" });
  for (const [subject, count] of Object.entries(state.subjects ?? {}))
    if (!filters.some((filter) => subjectMatches(filter, subject))) pending += count;
  return pending;
}

/** NATS subject matching: `*` is one token, a final `>` one or more. */
function subjectMatches(filter: string, subject: string): boolean {
  const want = filter.split(".");
  const have = subject.split(".");
  for (const [i, token] of want.entries()) {
    if (token === ">") return have.length > i;
    if (i >= have.length || (token !== "*" && token !== have[i])) return false;
  }
  return want.length === have.length;
}

async function findStream(jsm: JetStreamManager, name: string): Promise<StreamInfo | undefined> {
  try {
    return await jsm.streams.info(name);
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return undefined;
    throw err;
  }
}
