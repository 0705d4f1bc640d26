import { ENTITY_NAMES } from "@qbo-webhooks/contracts";
import { loopback, type Pipeline } from "@qbo-webhooks/processor/testing";
import type { Counter } from "prom-client";
import type { ReconcilerConfig } from "../config.js";
import type { ReconcilerService } from "../reconciler-service.js";

/** The operators' bearer token for `/connect` in tests. */
export const OPERATOR_TOKEN = "test-operator-token-0123456789abcdef";

/** A reconciler for the pipeline harness: fast loops, short leases, the sandbox as QuickBooks. */
export function reconcilerConfig(pipeline: Pipeline, id: string): ReconcilerConfig {
  const base = pipeline.processorConfig(id);
  return {
    environment: "sandbox",
    apiBaseUrl: base.apiBaseUrl,
    tokenUrl: base.tokenUrl,
    authorizeUrl: base.authorizeUrl,
    revokeUrl: base.revokeUrl,
    impliedByApiBaseUrl: [],
    clientId: base.clientId,
    clientSecret: base.clientSecret,
    tokenKey: base.tokenKey,
    natsServers: base.natsServers,
    http: loopback(0),
    ops: loopback(0),
    operatorToken: OPERATOR_TOKEN,
    redirectUri: "http://127.0.0.1/oauth/callback",
    // Every type webhooks announce, as a new company follows by default.
    entities: [...ENTITY_NAMES],
    // Long enough that a busy CI machine does not make leadership change hands mid-test.
    leader: {
      mode: "nats",
      leaseMs: 15_000,
      renewDeadlineMs: 10_000,
      retryMs: 500,
    },
    companyResources: undefined,
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

/** Connects (or reconnects) every sandbox company through the reconciler's OAuth flow, as an operator in a browser would. */
export async function connectThroughConsent(pipeline: Pipeline, reconciler: ReconcilerService): Promise<void> {
  for (const company of pipeline.realms) {
    // `reconnect`: some of them may be connected already.
    const answer = await consent(reconciler, `realmId=${company.realmId}&reconnect=true`);
    if (answer.status !== 200) throw new Error(`/oauth/callback answered ${answer.status}: ${await answer.text()}`);
  }
}

/**
 * One connect flow as an operator's browser goes through it: `/connect` on the ops port with the
 * operator token, Intuit's (the sandbox's) consent, then the callback on the public port with the
 * cookie `/connect` set. Answers the callback's response; `alter` changes the callback first.
 */
export async function consent(
  reconciler: Pick<ReconcilerService, "port" | "opsPort">,
  query: string,
  alter: (callback: { url: URL; cookie: string }) => { url: URL; cookie: string } = (c) => c,
): Promise<Response> {
  const start = await fetch(`http://127.0.0.1:${reconciler.opsPort}/connect?${query}`, {
    headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
    redirect: "manual",
  });
  if (start.status !== 302) throw new Error(`/connect answered ${start.status}: ${await start.text()}`);
  const cookie = (start.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
  const approved = await fetch(start.headers.get("location") ?? "", { redirect: "manual" });
  const back = new URL(approved.headers.get("location") ?? "");
  const url = new URL(`http://127.0.0.1:${reconciler.port}/oauth/callback${back.search}`);
  const callback = alter({ url, cookie });
  return fetch(callback.url, { headers: { cookie: callback.cookie } });
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
