import { ENTITY_NAMES } from "@qbo-webhooks/contracts";
import type { Pipeline } from "@qbo-webhooks/processor/testing";
import type { Counter } from "prom-client";
import type { ReconcilerConfig } from "../config.js";
import type { ReconcilerService } from "../reconciler-service.js";

/** A reconciler for the pipeline harness: fast loops, short leases, the sandbox as QuickBooks. */
export function reconcilerConfig(pipeline: Pipeline, id: string): ReconcilerConfig {
  const base = pipeline.processorConfig(id);
  return {
    environment: "sandbox",
    apiBaseUrl: base.apiBaseUrl,
    tokenUrl: base.tokenUrl,
    authorizeUrl: base.authorizeUrl,
    clientId: base.clientId,
    clientSecret: base.clientSecret,
    tokenKey: base.tokenKey,
    natsServers: base.natsServers,
    httpPort: 0,
    redirectUri: "http://127.0.0.1/oauth/callback",
    // Every type webhooks announce, as a new company follows by default.
    entities: [...ENTITY_NAMES],
    // Long enough that a busy CI machine does not make leadership change hands mid-test.
    leader: {
      mode: "nats",
      leaseName: "test",
      namespace: "test",
      leaseMs: 15_000,
      renewDeadlineMs: 10_000,
      retryMs: 500,
    },
    loopIntervalMs: 200,
    tokenRefreshAheadMs: 15 * 60_000,
    silenceMs: 15 * 60_000,
    silenceMinMs: 2 * 60_000,
    missedGraceMs: 5 * 60_000,
    dailyCdc: true,
    cdcConcurrency: 4,
    reconcilerId: id,
    streamReplicas: 1,
    shutdownDeadlineMs: 8000,
    logLevel: "silent",
    exportTraces: false,
  };
}

/** A counter's value on a replica, summed over the series matching `labels`. */
export async function counter(
  service: ReconcilerService,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = (await (service.registry.getSingleMetric(name) as Counter | undefined)?.get())?.values ?? [];
  return metric
    .filter((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want))
    .reduce((sum, v) => sum + v.value, 0);
}

/** Connects every sandbox company through the reconciler's OAuth flow, as a user in a browser would. */
export async function connectThroughConsent(pipeline: Pipeline, reconciler: ReconcilerService): Promise<void> {
  for (const company of pipeline.realms) {
    const start = await fetch(`http://127.0.0.1:${reconciler.port}/connect?realmId=${company.realmId}`, {
      redirect: "manual",
    });
    if (start.status !== 302) throw new Error(`/connect answered ${start.status}`);
    const consent = await fetch(start.headers.get("location") ?? "", { redirect: "manual" });
    const callback = new URL(consent.headers.get("location") ?? "");
    const answer = await fetch(`http://127.0.0.1:${reconciler.port}/oauth/callback${callback.search}`);
    if (answer.status !== 200) throw new Error(`/oauth/callback answered ${answer.status}: ${await answer.text()}`);
  }
}

type Copy = Record<string, Record<string, string>>;

/** How many entities `copy` has wrong against `truth` (realm → "Entity/id" → SyncToken): stale, missing or extra. */
export function differences(truth: Copy, copy: Copy): number {
  let count = 0;
  for (const [realm, entries] of Object.entries(truth)) {
    for (const [key, version] of Object.entries(entries)) if (copy[realm]?.[key] !== version) count++;
    for (const key of Object.keys(copy[realm] ?? {})) if (!(key in entries)) count++;
  }
  for (const [realm, entries] of Object.entries(copy)) if (!(realm in truth)) count += Object.keys(entries).length;
  return count;
}
