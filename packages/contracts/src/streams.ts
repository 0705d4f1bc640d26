/** The stages that dead-letter what they cannot handle, each to `qbo.dlq.<stage>`. */
export const DLQ_STAGES = ["ingress", "ordering", "processor", "delivery"] as const;
export type DlqStage = (typeof DLQ_STAGES)[number];

export const Subjects = {
  webhooks: "qbo.webhooks",
  /** Change events of one realm, on its partition. */
  events: (partition: number, realmId: string) => `qbo.events.${partition}.${realmId}`,
  /** Every realm of one partition: what the processor owning it consumes. */
  eventsOfPartition: (partition: number) => `qbo.events.${partition}.*`,
  changes: (realmId: string, entity: string) => `qbo.changes.${realmId}.${entity}`,
  /** A realm's changes waiting for delivery to the app, in order, on its partition. */
  deliveries: (partition: number, realmId: string) => `qbo.deliveries.${partition}.${realmId}`,
  /** Every realm's delivery queue on one partition (replays included). */
  deliveriesOfPartition: (partition: number) => `qbo.deliveries.${partition}.>`,
  /** Dead-lettered deliveries sent back by an operator; delivered before the realm's queue, if still current. */
  deliveryReplays: (partition: number, realmId: string) => `qbo.deliveries.${partition}.${realmId}.replay`,
  dlq: (stage: DlqStage) => `qbo.dlq.${stage}`,
} as const;

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * How a stream keeps messages:
 * - `work`: until its consumer acknowledges them, never by age; when `maxBytes` is full, new
 *   messages are refused (the publisher sees an error), so unprocessed work is never dropped silently.
 * - `history`: for `maxAgeMs`, and the oldest go first when `maxBytes` is full.
 * - `queue`: until removed by the service (delivered changes); full refuses new messages.
 */
export type StreamRetention = "work" | "history" | "queue";

/** What a stream must be, independent of the NATS client; `packages/messaging` turns it into a stream config. */
export interface StreamSpec {
  readonly name: string;
  readonly description: string;
  readonly subjects: readonly string[];
  readonly retention: StreamRetention;
  /** 0 keeps messages until removed by their consumer or by hand. */
  readonly maxAgeMs: number;
  /** The stream's share of the JetStream store (file storage, per replica). */
  readonly maxBytes: number;
  /** JetStream stores a message whose `Nats-Msg-Id` it saw within this window only once. */
  readonly duplicateWindowMs: number;
}

/**
 * QBO_EVENTS metadata: how many partitions realms are routed to. Ordering and every processor
 * must agree; the first to start pins it, the others refuse to start with another value, and the
 * CLI routes replays by it.
 */
export const PARTITIONS_METADATA = "qbo_partitions";

/** Durable consumer names. */
export const Consumers = {
  ordering: "ordering",
  /** One per partition; only the replica holding the partition's lease pulls from it. */
  processor: (partition: number) => `processor-p${partition}`,
} as const;

/** Key-value buckets (../shared/DESIGN.md). */
export const Buckets = {
  entityVersions: "qbo-entity-versions",
  entities: "qbo-entities",
  watermarks: "qbo-watermarks",
  leases: "qbo-leases",
  tokens: "qbo-tokens",
  realms: "qbo-realms",
  /** Per-realm QuickBooks call budget shared by every process that calls the API. */
  rateLimits: "qbo-rate-limits",
  /** Per realm, the QBO_DELIVERIES sequence of the last change delivered to the app (or dead-lettered). */
  deliveryCursors: "qbo-delivery-cursors",
  /** OAuth connect flows started and not yet finished: single use, gone after 10 minutes. */
  connectFlows: "qbo-connect-flows",
} as const;

export type BucketName = (typeof Buckets)[keyof typeof Buckets];

/** A bucket's limits; -1 is none. A full bucket refuses writes (KV discards nothing to make room). */
export interface BucketLimits {
  readonly maxBytes: number;
  readonly maxValueSize: number;
  /** Values kept per key, the latest included (1 unless a bucket says otherwise). */
  readonly history?: number;
  /** Keys expire this long after their last write (0 or absent: never). */
  readonly ttlMs?: number;
}

/** Small per-realm records: 10,000 realms use a few MiB of each. */
const PER_REALM: BucketLimits = { maxBytes: 64 * MiB, maxValueSize: 64 * 1024 };

/**
 * Limits per bucket. The copy and its versions grow with the companies' data (about 2 KB and 150
 * bytes per entity), so they have no byte limit of their own: size the JetStream volume for them
 * (README, "Storage"); their values are bounded by the server's `max_payload`.
 */
export const BucketLimits: Record<BucketName, BucketLimits> = {
  [Buckets.entityVersions]: { maxBytes: -1, maxValueSize: -1 },
  [Buckets.entities]: { maxBytes: -1, maxValueSize: -1 },
  [Buckets.watermarks]: PER_REALM,
  [Buckets.leases]: PER_REALM,
  // The last five token sets per realm: a refresh token rotated away by mistake can be put back by hand (README).
  [Buckets.tokens]: { ...PER_REALM, history: 5 },
  [Buckets.realms]: PER_REALM,
  [Buckets.rateLimits]: PER_REALM,
  [Buckets.deliveryCursors]: PER_REALM,
  [Buckets.connectFlows]: { maxBytes: 16 * MiB, maxValueSize: 4096, ttlMs: 10 * 60_000 },
};

/**
 * Sized for 10,000 realms at 10,000 notifications a minute, within a 10 GiB JetStream volume (the
 * NATS Helm chart's default) with room left for the KV buckets: 1 GiB of notifications (about 1 KB
 * each) is over an hour and a half of backlog, as is 1 GiB of change events; the feed keeps 30 days
 * or 4 GiB, whichever ends first; 1.5 GiB of undelivered changes is over an hour of the app being
 * down at that rate. The README's "Storage" section lists these limits.
 */
export const Streams = {
  /**
   * Raw notifications as received. The duplicate window covers QuickBooks redelivering a
   * notification we stored but could not confirm in time (answered 503): the legacy ladder retries
   * until +100 min and the current one reaches its 2 h step at ~2.4 h, so 3 h catches those; later
   * repeats are caught per event by ordering. A longer window costs server memory per message.
   */
  webhooks: {
    name: "QBO_WEBHOOKS",
    description: "QuickBooks webhook notifications, raw bodies as received",
    subjects: [Subjects.webhooks],
    retention: "work",
    maxBytes: 1 * GiB,
    maxAgeMs: 0,
    duplicateWindowMs: 3 * HOUR,
  },
  /** Change events, deduplicated per change within the window (a redelivered notification republishes). */
  events: {
    name: "QBO_EVENTS",
    description: "Change events per realm, routed to partitions: qbo.events.<partition>.<realmId>",
    subjects: ["qbo.events.>"],
    retention: "work",
    maxBytes: 1 * GiB,
    maxAgeMs: 0,
    duplicateWindowMs: 3 * HOUR,
  },
  /** Applied changes: the feed apps consume. */
  changes: {
    name: "QBO_CHANGES",
    description: "Applied changes with the entity's new state: qbo.changes.<realmId>.<Entity>",
    subjects: ["qbo.changes.>"],
    retention: "history",
    maxBytes: 4 * GiB,
    maxAgeMs: 30 * DAY,
    duplicateWindowMs: 3 * HOUR,
  },
  /**
   * Applied changes waiting to be POSTed to the app, one subject per realm on its partition. The
   * lease holder of the partition appends (fenced by the subject's last sequence) and delivers in
   * order; delivered messages are purged except the last, whose `Qbo-Realm-Seq` the next append continues.
   */
  deliveries: {
    name: "QBO_DELIVERIES",
    description: "Applied changes queued for HTTP delivery, per realm: qbo.deliveries.<partition>.<realmId>",
    subjects: ["qbo.deliveries.>"],
    retention: "queue",
    maxBytes: 1536 * MiB,
    maxAgeMs: 0,
    duplicateWindowMs: 3 * HOUR,
  },
  /**
   * Dead letters and quarantined notifications stay until an operator replays or purges them; when
   * full, a stage cannot dead-letter and keeps the message unacknowledged instead (nothing dropped).
   */
  dlq: {
    name: "QBO_DLQ",
    description: "Dead letters and quarantined notifications, with the reason in a header",
    subjects: ["qbo.dlq.>"],
    retention: "queue",
    maxBytes: 512 * MiB,
    maxAgeMs: 0,
    duplicateWindowMs: 3 * HOUR,
  },
} as const satisfies Record<string, StreamSpec>;
