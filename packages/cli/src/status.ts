import { Buckets, DLQ_STAGES, LEADER_KEY, LeaderRecord, RealmStatus, Streams, Subjects } from "@qbo-webhooks/contracts";
import type { RealmRegistry } from "@qbo-webhooks/entity-store";
import {
  type ConsumerBacklog,
  consumerBacklog,
  type NatsClient,
  oldestWaitingSeconds,
  openBucket,
} from "@qbo-webhooks/messaging";

/** A service's ops address (`/healthz`, `/readyz`) under its name. */
export interface OpsAddress {
  readonly name: string;
  readonly url: string;
}

/** Reads `name=url,name=url` (QBO_OPS_URLS, --ops). */
export function parseOpsAddresses(text: string): OpsAddress[] {
  return text
    .split(",")
    .map((pair) => pair.trim())
    .filter(Boolean)
    .map((pair) => {
      const at = pair.indexOf("=");
      if (at < 1) throw new Error(`"${pair}" is not name=url (such as ingress=http://127.0.0.1:9090)`);
      return { name: pair.slice(0, at), url: pair.slice(at + 1).replace(/\/$/, "") };
    });
}

/** What `qbo-webhooks status` shows: enough to tell whether the pipeline is healthy. */
export interface PipelineStatus {
  readonly services: { name: string; url: string; up: boolean; ready: boolean; reason?: string }[];
  readonly nats: { version: string; storage: string; replicas: number };
  readonly lastWebhookAt?: number;
  /** Age of the oldest message waiting in each work stream, in seconds (0: nothing waits). */
  readonly oldestWaitingSeconds: Record<string, number>;
  readonly pending: ConsumerBacklog[];
  readonly deadLetters: Record<string, number>;
  readonly realms: Record<string, number>;
  readonly leader?: { holder: string; transitions: number };
}

/** The work queues between the stages: ordering reads QBO_WEBHOOKS, the processors QBO_EVENTS, delivery QBO_DELIVERIES. */
const STAGE_STREAMS = [Streams.webhooks, Streams.events, Streams.deliveries];

export async function readStatus(
  client: NatsClient,
  realms: RealmRegistry,
  ops: readonly OpsAddress[],
): Promise<PipelineStatus> {
  // First, alone: on a NATS without the streams nothing else is started. Reads still in flight when
  // the command failed and drained the connection left a timer holding the CLI open for 30 s (1 run
  // in 3 to 18 of `status`, once the bundle was smaller and started faster).
  const webhooks = await client.jsm.streams.info(Streams.webhooks.name).catch((err: unknown) => {
    throw new Error(
      `cannot read stream ${Streams.webhooks.name} (${err instanceof Error ? err.message : String(err)}): ` +
        "is this the pipeline's NATS, and has a service started on it (they create the streams)?",
    );
  });
  const [services, records] = await Promise.all([Promise.all(ops.map(probe)), realms.list()]);
  const oldest: Record<string, number> = { [Streams.webhooks.name]: oldestWaitingSeconds(webhooks.state) };
  for (const spec of STAGE_STREAMS) {
    if (spec.name === Streams.webhooks.name) continue; // read above
    oldest[spec.name] = oldestWaitingSeconds((await client.jsm.streams.info(spec.name)).state);
  }
  const dlq = await client.jsm.streams.info(Streams.dlq.name, { subjects_filter: ">" });
  const deadLetters = Object.fromEntries(
    DLQ_STAGES.map((stage) => [stage, dlq.state.subjects?.[Subjects.dlq(stage)] ?? 0]),
  );
  const byStatus = Object.fromEntries(RealmStatus.options.map((status) => [status, 0]));
  for (const record of records) byStatus[record.status] = (byStatus[record.status] ?? 0) + 1;
  const lastWebhooks = records.map((r) => r.lastWebhookAt ?? 0).filter((at) => at > 0);
  const leases = await openBucket(client, Buckets.leases, { replicas: 1 });
  const lock = await leases.get(LEADER_KEY);
  const leader = lock?.operation === "PUT" ? LeaderRecord.safeParse(lock.json()).data : undefined;
  return {
    services,
    nats: {
      version: client.nc.info?.version ?? "unknown",
      storage: webhooks.config.storage,
      replicas: webhooks.config.num_replicas,
    },
    ...(lastWebhooks.length ? { lastWebhookAt: Math.max(...lastWebhooks) } : {}),
    oldestWaitingSeconds: oldest,
    pending: await consumerBacklog(
      client,
      STAGE_STREAMS.map((s) => s.name),
    ),
    deadLetters,
    realms: byStatus,
    ...(leader?.holder ? { leader: { holder: leader.holder, transitions: leader.transitions } } : {}),
  };
}

async function probe(address: OpsAddress): Promise<PipelineStatus["services"][number]> {
  const get = (path: string) => fetch(`${address.url}${path}`, { signal: AbortSignal.timeout(1500) });
  try {
    const health = await get("/healthz");
    const ready = await get("/readyz");
    const reason = ready.ok ? undefined : (await ready.text()).slice(0, 200);
    return { ...address, up: health.ok, ready: ready.ok, ...(reason ? { reason } : {}) };
  } catch {
    return { ...address, up: false, ready: false, reason: "not answering" };
  }
}

const ago = (ms: number) => {
  const seconds = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return seconds < 120
    ? `${seconds} s ago`
    : seconds < 7200
      ? `${Math.round(seconds / 60)} min ago`
      : `${Math.round(seconds / 3600)} h ago`;
};

/** One screen a new user reads top to bottom. */
export function statusLines(status: PipelineStatus): string {
  const lines = ["services:"];
  for (const s of status.services) {
    const state = !s.up ? "DOWN" : s.ready ? "ready" : "up, NOT ready";
    lines.push(`  ${s.name.padEnd(12)} ${state.padEnd(14)} ${s.url}${s.reason ? `  (${s.reason})` : ""}`);
  }
  lines.push(
    `nats-server:     ${status.nats.version}, streams stored on ${status.nats.storage} with ${status.nats.replicas} replica(s)`,
    `last webhook:    ${status.lastWebhookAt ? ago(status.lastWebhookAt) : "none yet"}`,
    `oldest waiting:  ${Object.entries(status.oldestWaitingSeconds)
      .map(([stream, seconds]) => `${stream} ${seconds.toFixed(1)} s`)
      .join(", ")}`,
  );
  const perStream = new Map<string, number>();
  for (const p of status.pending) perStream.set(p.stream, (perStream.get(p.stream) ?? 0) + p.pending);
  lines.push(
    `pending:         ${[...perStream].map(([stream, n]) => `${stream} ${n}`).join(", ") || "no consumers yet"}`,
    `dead letters:    ${Object.entries(status.deadLetters)
      .map(([stage, n]) => `${stage} ${n}`)
      .join(", ")}${Object.values(status.deadLetters).some((n) => n > 0) ? "  (qbo-webhooks dlq list)" : ""}`,
    `realms:          ${Object.entries(status.realms)
      .map(([state, n]) => `${n} ${state}`)
      .join(", ")}`,
    `reconciler lead: ${status.leader ? `${status.leader.holder} (${status.leader.transitions} changes of leader)` : "none in NATS KV (none running, or leading through a Kubernetes Lease)"}`,
  );
  return lines.join("\n");
}

/** Healthy: every service up and ready, nothing dead-lettered. */
export function healthy(status: PipelineStatus): boolean {
  return status.services.every((s) => s.up && s.ready) && Object.values(status.deadLetters).every((n) => n === 0);
}
