import { setTimeout as sleep } from "node:timers/promises";
import { Buckets, type CompanyConditionType, type RealmRecord, rfc3339 } from "@qbo-webhooks/contracts";
import { RealmRegistry } from "@qbo-webhooks/entity-store";
import { kvKey, type NatsClient, openBucket } from "@qbo-webhooks/messaging";
import { SingleBar } from "cli-progress";

/** The connected companies, as the reconciler keeps them in KV `qbo-realms`. */
export async function openRealms(client: NatsClient): Promise<RealmRegistry> {
  return new RealmRegistry(await openBucket(client, Buckets.realms, { replicas: 1 }));
}

const when = (ms: number | undefined) => (ms === undefined ? "-" : rfc3339(ms));

/** A condition as the leader keeps it: its status, and why when it is not True. */
function conditionCell(record: RealmRecord, type: CompanyConditionType): string {
  const condition = record.conditions?.find((c) => c.type === type);
  if (!condition) return "-";
  return condition.status === "True" ? "True" : `${condition.status} (${condition.reason})`;
}

/**
 * One line per realm: status, the conditions the leader keeps (the same a QuickBooksCompany
 * resource shows), what it follows, and when it was last heard of.
 */
export function realmLines(realms: readonly RealmRecord[]): string {
  if (realms.length === 0)
    return "no companies connected: open the reconciler's /connect (qbo-webhooks realms connect)";
  const header = [
    "realm",
    "status",
    "ready",
    "connected",
    "caught up",
    "entities",
    "last webhook",
    "last CDC",
    "verified until",
    "token expires",
  ];
  const rows = realms.map((r) => [
    r.realmId,
    r.status === "disconnected" ? `${r.status} (${r.statusReason ?? "no reason recorded"})` : r.status,
    conditionCell(r, "Ready"),
    conditionCell(r, "Connected"),
    conditionCell(r, "CaughtUp"),
    String(r.entities.length),
    when(r.lastWebhookAt),
    r.lastCdcAt === undefined ? "-" : `${when(r.lastCdcAt)} ${r.lastCdcResult ?? ""}`.trim(),
    when(r.verifiedUntil),
    when(r.accessTokenExpiresAt),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  return [header, ...rows]
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/**
 * Marks a realm disconnected and forgets its tokens: its events then wait or dead-letter, and the
 * reconciler leaves it alone until it connects again.
 */
export async function disconnectRealm(
  client: NatsClient,
  realms: RealmRegistry,
  realmId: string,
): Promise<RealmRecord> {
  const updated = await realms.update(
    realmId,
    (r) =>
      r && { ...r, status: "disconnected", disconnectedBy: "operator", statusReason: "disconnected by an operator" },
  );
  if (!updated) throw new Error(`no realm ${realmId}; see qbo-webhooks realms list`);
  const tokens = await openBucket(client, Buckets.tokens, { replicas: 1 });
  await tokens.delete(kvKey(realmId));
  return updated;
}

/**
 * Asks the reconciler's leader for a CDC of the realm and, with `wait`, follows it to the end
 * (a progress bar on a terminal). Resolves with the record after the run.
 */
export async function requestCdc(
  realms: RealmRegistry,
  realmId: string,
  options: { wait: boolean; showProgress: boolean; timeoutMs: number },
): Promise<RealmRecord> {
  const requestedAt = Date.now();
  const requested = await realms.update(realmId, (r) => r && { ...r, cdcRequestedAt: requestedAt });
  if (!requested) throw new Error(`no realm ${realmId}; see qbo-webhooks realms list`);
  if (requested.status !== "connected")
    throw new Error(`realm ${realmId} is ${requested.status}: connect it again first`);
  if (!options.wait) return requested;
  const bar = options.showProgress
    ? new SingleBar({ format: "CDC {realm} [{bar}] {value}/{total} entity types, {found} objects", hideCursor: true })
    : undefined;
  bar?.start(requested.entities.length, 0, { realm: realmId, found: 0 });
  const deadline = Date.now() + options.timeoutMs;
  try {
    for (;;) {
      const record = await realms.get(realmId);
      if (record?.cdcProgress) bar?.update(record.cdcProgress.typesDone, { found: record.cdcProgress.found });
      if (record && record.cdcRequestedAt === undefined && record.lastCdcAt !== undefined) {
        bar?.update(requested.entities.length);
        return record;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `the CDC did not finish within ${options.timeoutMs / 1000} s: is a reconciler running and leading?`,
        );
      }
      await sleep(250);
    }
  } finally {
    bar?.stop();
  }
}

/** What a finished CDC run came to, in one sentence. */
export function cdcSummaryLine(record: RealmRecord): string {
  const summary = record.lastCdcSummary;
  const result = `CDC of ${record.realmId} ${record.lastCdcResult ?? "finished"}`;
  if (!summary) return result;
  return (
    `${result}: ${summary.found} found in QuickBooks, ${summary.published} published to the pipeline ` +
    `(${summary.missed} that no webhook announced), ${summary.left} already in our copy, ` +
    `${summary.deferred} changed after ${when(summary.upTo)} left to the next run`
  );
}
