import { DLQ_STAGES, type RealmRecord, Streams, Subjects } from "@qbo-webhooks/contracts";
import { consumerBacklog, type NatsClient, oldestWaitingSeconds } from "@qbo-webhooks/messaging";
import type { ReconcilerMetrics } from "./reconciler-metrics.js";

/** The streams whose durable consumers are the pipeline's work queues (QBO_CHANGES: the apps' own). */
const BACKLOG_STREAMS = [Streams.webhooks.name, Streams.events.name, Streams.changes.name];

/**
 * Sets the gauges that say whether the pipeline keeps up: each durable consumer's backlog, dead
 * letters, each stream's fill and the age of the oldest unprocessed work, and how far behind the
 * least recently verified realm is.
 */
export async function publishBacklog(
  client: NatsClient,
  metrics: ReconcilerMetrics,
  connected: readonly RealmRecord[],
  now: number,
): Promise<void> {
  const { jsm } = client;
  for (const { stream, consumer, pending } of await consumerBacklog(client, BACKLOG_STREAMS)) {
    metrics.consumerPending.set({ stream, consumer }, pending);
  }
  for (const spec of Object.values(Streams)) {
    const dlq = spec.name === Streams.dlq.name;
    // The DLQ's per-subject counts say which stage dead-lettered what.
    const { config, state } = await jsm.streams.info(spec.name, dlq ? { subjects_filter: ">" } : undefined);
    if (dlq)
      for (const stage of DLQ_STAGES) metrics.dlqMessages.set({ stage }, state.subjects?.[Subjects.dlq(stage)] ?? 0);
    if (config.max_bytes > 0) metrics.streamFill.set({ stream: spec.name }, state.bytes / config.max_bytes);
    // Wall time, not the QuickBooks clock `now` (a sandbox may run that faster).
    if (spec.retention === "work") metrics.oldestUnprocessed.set({ stream: spec.name }, oldestWaitingSeconds(state));
  }
  const verified = connected.map((r) => r.verifiedUntil ?? r.connectedAt);
  metrics.cdcLag.set(verified.length ? Math.max(0, (now - Math.min(...verified)) / 1000) : 0);
}
