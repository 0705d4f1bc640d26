// How fast one app's webhooks flow from the QuickBooks sandbox into the ingress: QuickBooks'
// current policy sends one notification at a time per app, so per-app throughput is events per
// notification over the round trip. Bounded: a fixed burst, then a fixed-rate run of RUN_SECONDS.
import { fileURLToPath } from "node:url";
import { NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import { Sandbox, seededRandom, TrafficGenerator } from "@qbo-webhooks/sandbox";
import { printTable, type Row, writeResults } from "./bench-report.js";
import { startServer, stopServer } from "./server-process.js";

const BURST_CHANGES = 20_000;
const RATE = 200;
const RUN_SECONDS = Number(process.env.BENCH_PHASE_SECONDS ?? 10);
const TOKEN = "bench-verifier-token";
const INGRESS_MAIN = fileURLToPath(import.meta.resolve("@qbo-webhooks/ingress"));

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

async function run(form: "cloudevents" | "legacy", ingressUrl: string): Promise<Row[]> {
  const sandbox = await Sandbox.start({ seed: 5 });
  try {
    sandbox.registerApp({
      appId: "bench",
      clientId: "c",
      clientSecret: "s",
      verifierToken: TOKEN,
      endpointUrl: `${ingressUrl}/webhooks/quickbooks`,
      payloadForm: form,
    });
    const realms = Array.from({ length: 20 }, () => sandbox.createCompany());
    for (const company of realms) sandbox.connect("bench", company.realmId);
    const webhooks = sandbox.webhooks("bench");
    const traffic = new TrafficGenerator({ realms, ratePerSecond: RATE, random: seededRandom(8), burstProbability: 0 });

    /** Deliveries since the given history positions, over `seconds` of wall time. */
    const summarize = (scenario: string, from: { notifications: number; attempts: number }, seconds: number): Row => {
      const state = webhooks.state();
      const attempts = state.attempts.slice(from.attempts);
      const events = state.notifications
        .slice(from.notifications)
        .filter((n) => n.state === "delivered")
        .reduce((sum, n) => sum + n.changes.length, 0);
      const durations = attempts.map((a) => a.durationMs).sort((a, b) => a - b);
      return {
        scenario,
        form,
        "events/s": events / seconds,
        "POSTs/s": attempts.length / seconds,
        "events/POST": events / Math.max(1, attempts.length),
        "POST p50 ms": percentile(durations, 0.5),
        "POST p99 ms": percentile(durations, 0.99),
        failed: attempts.filter((a) => !a.ok).length,
      };
    };

    const position = () => ({
      notifications: webhooks.state().notifications.length,
      attempts: webhooks.state().attempts.length,
    });
    let started = performance.now();
    traffic.step(BURST_CHANGES);
    await waitUntil(() => webhooks.state().queueDepth === 0 && webhooks.state().notifications.length > 0);
    await webhooks.settled();
    const burst = summarize(
      `burst of ${BURST_CHANGES} changes`,
      { notifications: 0, attempts: 0 },
      (performance.now() - started) / 1000,
    );

    const before = position();
    started = performance.now();
    traffic.start();
    await new Promise((resolve) => setTimeout(resolve, RUN_SECONDS * 1000));
    traffic.stop();
    await waitUntil(() => webhooks.state().queueDepth === 0);
    await webhooks.settled();
    const steady = summarize(`${RATE} changes/s for ${RUN_SECONDS} s`, before, (performance.now() - started) / 1000);
    return [burst, steady];
  } finally {
    await sandbox.close();
  }
}

/** Waits (bounded, 60 s) until `done` holds. */
async function waitUntil(done: () => boolean): Promise<void> {
  const deadline = performance.now() + 60_000;
  while (!done()) {
    if (performance.now() > deadline) throw new Error("webhook delivery did not finish within 60 s");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const nats = await NatsServerProcess.start();
const ingress = await startServer(
  [INGRESS_MAIN],
  { NATS_URL: nats.url, QBO_VERIFIER_TOKENS: TOKEN, LOG_LEVEL: "warn" },
  async ({ opsUrl }) => (await fetch(`${opsUrl}/readyz`)).status === 200,
);
const rows: Row[] = [];
try {
  for (const form of ["cloudevents", "legacy"] as const) rows.push(...(await run(form, ingress.url)));
} finally {
  await stopServer(ingress);
  await nats.dispose();
}
printTable("Sandbox webhooks into the ingress: one app, current policy (one notification at a time), 20 realms", rows);
process.stdout.write(`\nresults: ${await writeResults("webhook-delivery", rows)}\n`);
