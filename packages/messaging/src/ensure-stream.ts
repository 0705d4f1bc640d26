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
import type { StreamSpec } from "@qbo-webhooks/contracts";

export interface StreamPlacement {
  /** 1 for a single server, 3 in a cluster. */
  readonly replicas: number;
}

/** The JetStream config a spec asks for: file storage, so a PubAck means the message is on disk. */
export function streamConfig(spec: StreamSpec, placement: StreamPlacement): Partial<StreamConfig> & { name: string } {
  return {
    name: spec.name,
    description: spec.description,
    subjects: [...spec.subjects],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    max_age: nanos(spec.maxAgeMs),
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
 * @throws {StreamPinError} when the stream pins a key to another value.
 */
export async function ensureStream(
  jsm: JetStreamManager,
  spec: StreamSpec,
  placement: StreamPlacement,
  pins: Readonly<Record<string, string>> = {},
): Promise<StreamInfo> {
  const wanted = { ...streamConfig(spec, placement), metadata: { ...pins } };
  let current = await findStream(jsm, spec.name);
  if (!current) {
    try {
      return await jsm.streams.add(wanted);
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === STREAM_NAME_IN_USE)) throw err;
      current = await jsm.streams.info(spec.name);
    }
  }
  const config = current.config;
  for (const [key, value] of Object.entries(pins)) {
    const pinned = config.metadata?.[key];
    if (pinned !== undefined && pinned !== value)
      throw new StreamPinError(`${spec.name} is set up with ${key}=${pinned}, but this service has ${value}`);
  }
  wanted.metadata = { ...config.metadata, ...pins };
  const differs =
    Object.keys(pins).some((key) => config.metadata?.[key] === undefined) ||
    config.description !== wanted.description ||
    config.max_age !== wanted.max_age ||
    config.duplicate_window !== wanted.duplicate_window ||
    config.num_replicas !== wanted.num_replicas ||
    config.subjects.join(",") !== wanted.subjects?.join(",");
  return differs ? jsm.streams.update(spec.name, { ...config, ...wanted }) : current;
}

async function findStream(jsm: JetStreamManager, name: string): Promise<StreamInfo | undefined> {
  try {
    return await jsm.streams.info(name);
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return undefined;
    throw err;
  }
}
