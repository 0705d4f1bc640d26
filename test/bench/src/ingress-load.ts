// Load and latency of the ingress over loopback, from this process against an ingress process, on
// a real nats-server with file storage; run once with the default fsync and once with
// `sync_interval: always`. Baselines: the raw JetStream client publishing the same payloads at the
// same concurrency, and the bare HTTP frameworks doing no work. Issue 16's ratio to express is also
// measured with both servers up and the load alternating between them in 1 s slices, so that the
// machine's drift from minute to minute (a third on this shared VM) falls on both alike. Bounded:
// every phase stops by itself after PHASE_SECONDS.
import { fileURLToPath } from "node:url";
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { signIntuitPayload } from "@qbo-webhooks/contracts";
import { sampleCloudEventBody } from "@qbo-webhooks/contracts/testing";
import { NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import { printTable, type Row, writeResults } from "./bench-report.js";
import { closedLoop, createPool, type LoadResult, openLoop, type Request } from "./http-load.js";
import { cpuSeconds } from "./process-usage.js";
import { type Server, startServer, stopServer } from "./server-process.js";

const PHASE_SECONDS = Number(process.env.BENCH_PHASE_SECONDS ?? 10);
const CONCURRENCY = 64;
const FIXED_RATE = 1000;
const WARMUP_RATE = FIXED_RATE;
const WARMUP_SECONDS = 5;
const TOKEN = "bench-verifier-token";
const INGRESS_MAIN = fileURLToPath(import.meta.resolve("@qbo-webhooks/ingress"));
const CEILING_SERVER = fileURLToPath(new URL("./framework-ceiling-server.js", import.meta.url));
/** Slices per server in the alternating comparison with express. */
const ALTERNATING_ROUNDS = Number(process.env.BENCH_ALTERNATING_ROUNDS ?? 15);

interface Payload {
  readonly body: string;
  readonly signature: string;
}

// Distinct bodies, or the stream's dedupe would turn most requests into cheap duplicates. Made
// before the runs so that the load generator spends its CPU on sending, not on JSON and HMAC.
const PAYLOAD_POOL = 60_000;
const payloads: Payload[] = Array.from({ length: PAYLOAD_POOL }, (_, i) => {
  const body = sampleCloudEventBody(3, { realmId: String(1_000_000 + (i % 500)) });
  return { body, signature: signIntuitPayload(body, TOKEN) };
});
let counter = 0;
function nextPayload(): Payload {
  const payload = payloads[counter % PAYLOAD_POOL] as Payload;
  counter++;
  return payload;
}

function webhookRequest(): Request {
  const { body, signature } = nextPayload();
  return {
    path: "/webhooks/quickbooks",
    headers: { "content-type": "application/json", "intuit-signature": signature },
    body,
  };
}

function row(result: LoadResult): Row {
  const ms = (percentile: number) => result.latency.percentile(percentile) / 1e6;
  return {
    "req/s": result.sent / result.seconds,
    "p50 ms": ms(50),
    "p99 ms": ms(99),
    "max ms": result.latency.max / 1e6,
    "over 3 s": result.over3s,
    "non-200": result.non200,
    errors: result.errors,
    total: result.sent,
  };
}

async function drive(url: string, rate: number | undefined, seconds = PHASE_SECONDS): Promise<Row> {
  const pool = createPool(url, CONCURRENCY);
  try {
    const result = rate
      ? await openLoop(pool, rate, seconds, webhookRequest)
      : await closedLoop(pool, CONCURRENCY, seconds, webhookRequest);
    return row(result);
  } finally {
    await pool.close();
  }
}

async function rawPublishBaseline(natsUrl: string): Promise<Row> {
  const nc = await connect({ servers: natsUrl, noAsyncTraces: true });
  const js = jetstream(nc);
  const latencies: number[] = [];
  const deadline = performance.now() + PHASE_SECONDS * 1000;
  const encoder = new TextEncoder();
  const worker = async () => {
    while (performance.now() < deadline) {
      const { body } = nextPayload();
      const msgID = `baseline-${counter}`;
      const started = performance.now();
      await js.publish("qbo.webhooks", encoder.encode(body), { msgID, timeout: 3000 });
      latencies.push(performance.now() - started);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  await nc.close();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return {
    "req/s": latencies.length / PHASE_SECONDS,
    "p50 ms": at(0.5),
    "p99 ms": at(0.99),
    "max ms": at(1),
    "over 3 s": latencies.filter((ms) => ms > 3000).length,
    "non-200": 0,
    errors: 0,
    total: latencies.length,
  };
}

function startCeilingServer(framework: string): Promise<Server> {
  return startServer([CEILING_SERVER, framework], {}, async ({ url }) => {
    return (await fetch(`${url}/webhooks/quickbooks`, { method: "POST", body: "{}" })).status === 200;
  });
}

/**
 * The ingress and a bare express handler, both up, saturated in turn for 1 s slices: each one's rate
 * and main-process CPU per request over all its slices, and the ingress's share of express's.
 */
async function alternateWithExpress(ingress: Server): Promise<Row[]> {
  const express = await startCeilingServer("express");
  const measure = (name: string, server: Server) => ({
    name,
    pid: server.child.pid ?? 0,
    pool: createPool(server.url, CONCURRENCY),
    sent: 0,
    seconds: 0,
    cpu: 0,
  });
  const ours = measure("ingress", ingress);
  const theirs = measure("express, read body + 200, no work", express);
  try {
    await closedLoop(theirs.pool, CONCURRENCY, WARMUP_SECONDS, webhookRequest);
    for (let round = 0; round < ALTERNATING_ROUNDS; round++) {
      for (const entry of [ours, theirs]) {
        const before = await cpuSeconds(entry.pid);
        const result = await closedLoop(entry.pool, CONCURRENCY, 1, webhookRequest);
        entry.cpu += (await cpuSeconds(entry.pid)) - before;
        entry.sent += result.sent;
        entry.seconds += result.seconds;
      }
    }
  } finally {
    await Promise.all([ours.pool.close(), theirs.pool.close()]);
    await stopServer(express);
  }
  const rate = (entry: typeof ours) => entry.sent / entry.seconds;
  const cpuUs = (entry: typeof ours) => (entry.cpu * 1e6) / entry.sent;
  const percent = (share: number) => `${(share * 100).toFixed(0)}%`;
  const alternating = `alternating 1 s slices (${ALTERNATING_ROUNDS} each)`;
  return [
    ...[ours, theirs].map((entry) => ({
      run: `${entry.name}, saturated, ${alternating}`,
      fsync: entry === ours ? "default (2 min)" : "-",
      "req/s": rate(entry),
      "CPU µs/req": cpuUs(entry),
      total: entry.sent,
    })),
    {
      run: `ingress / express, ${alternating}`,
      fsync: "default (2 min)",
      "req/s": percent(rate(ours) / rate(theirs)),
      // Inverted, so that both read as the ingress's share of express's ceiling.
      "CPU µs/req": percent(cpuUs(theirs) / cpuUs(ours)),
    },
  ];
}

const rows: Row[] = [];
/** The ingress's saturation with the default fsync, to compare with express's own ceiling. */
let ingressCeiling = Number.NaN;
for (const syncAlways of [false, true]) {
  const fsync = syncAlways ? "always" : "default (2 min)";
  const nats = await NatsServerProcess.start({ syncAlways });
  // Readiness is on the ops port; the public port serves the webhook alone.
  const ingress = await startServer(
    [INGRESS_MAIN],
    { NATS_URL: nats.url, QBO_VERIFIER_TOKENS: TOKEN, LOG_LEVEL: "warn" },
    async ({ opsUrl }) => (await fetch(`${opsUrl}/readyz`)).status === 200,
  );
  try {
    await drive(ingress.url, WARMUP_RATE, WARMUP_SECONDS); // JIT and connection warm-up, not reported
    const fixed = await drive(ingress.url, FIXED_RATE);
    const saturated = await drive(ingress.url, undefined);
    // Issue 16's latency target is at half the saturation rate this run measured.
    const halfRate = Math.round(Number(saturated["req/s"]) / 2);
    const atHalf = await drive(ingress.url, halfRate);
    const baseline = await rawPublishBaseline(nats.url);
    const share = Number(saturated["req/s"]) / Number(baseline["req/s"]);
    if (!syncAlways) ingressCeiling = Number(saturated["req/s"]);
    rows.push(
      { run: `ingress @ ${FIXED_RATE}/s`, fsync, ...fixed },
      { run: `ingress saturated (${CONCURRENCY} conns)`, fsync, ...saturated },
      { run: `ingress @ half its saturation (${halfRate}/s)`, fsync, ...atHalf },
      { run: `raw JetStream publish (${CONCURRENCY} in flight)`, fsync, ...baseline },
      { run: "ingress saturated / raw publish", fsync, "req/s": `${(share * 100).toFixed(0)}%` },
    );
    if (!syncAlways) rows.push(...(await alternateWithExpress(ingress)));
  } finally {
    await stopServer(ingress);
    await nats.dispose();
  }
}

for (const framework of ["express", "node:http"]) {
  const server = await startCeilingServer(framework);
  try {
    await drive(server.url, undefined, WARMUP_SECONDS);
    const ceiling = await drive(server.url, undefined);
    rows.push({ run: `${framework}, read body + 200, no work`, fsync: "-", ...ceiling });
    if (framework === "express") {
      const share = ingressCeiling / Number(ceiling["req/s"]);
      rows.push({
        run: "ingress saturated / express",
        fsync: "default (2 min)",
        "req/s": `${(share * 100).toFixed(0)}%`,
      });
    }
  } finally {
    await stopServer(server);
  }
}

printTable(`Ingress load over loopback (${PHASE_SECONDS} s per run, 3-event CloudEvents notifications)`, rows);
process.stdout.write(`\nresults: ${await writeResults("ingress-load", rows)}\n`);
