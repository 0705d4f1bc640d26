// Soak: the whole local pipeline (`scripts/start-local.mjs`: nats-server, sandbox, ingress,
// ordering, reconciler, processors, each its own process) under steady traffic for SOAK_MINUTES.
// Samples every service's resident memory from /proc and reports the start (after warm-up), the
// end, the peak and the growth, against the targets: at most 150 MB each, less than 10 % growth.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { printTable, type Row, writeResults } from "./bench-report.js";
import { running, services, unprocessed } from "./local-pipeline.js";
import { residentMb } from "./process-usage.js";

const Settings = z.object({
  SOAK_MINUTES: z.coerce.number().min(1).max(180).default(30),
  SOAK_RATE: z.coerce.number().min(1).max(500).default(50),
  SOAK_PROCESSORS: z.coerce.number().int().min(1).max(8).default(2),
  SOAK_REALMS: z.coerce.number().int().min(1).max(1000).default(50),
  /**
   * Node's flags for our services (not the sandbox): by default a heap ceiling, as a deployment sets
   * one (the chart's `heapMiB`), since without one V8 keeps garbage up to a share of the machine's
   * memory. Empty for Node's defaults.
   */
  SOAK_NODE_OPTIONS: z.string().default("--max-old-space-size=96 --max-semi-space-size=2"),
});
const settings = Settings.parse(process.env);
const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const SAMPLE_MS = 10_000;
/**
 * Memory is compared from a third of the run on: V8 lets a heap grow for minutes before it
 * settles, which is not a leak; growth over the remaining two thirds is.
 */
const WARM_UP_MS = (settings.SOAK_MINUTES * 60_000) / 3;
const LIMIT_MB = 150;
const MAX_GROWTH = 0.1;
const INGRESS_OPS = "http://127.0.0.1:9090";
const NATS_MONITOR = "http://127.0.0.1:8222";

interface Sample {
  readonly atMs: number;
  readonly rssMb: Map<string, number>;
  readonly notifications: number;
}

const launcher = spawn(process.execPath, [join(ROOT, "scripts", "start-local.mjs")], {
  cwd: ROOT,
  env: {
    ...process.env,
    SANDBOX_TRAFFIC_RATE: String(settings.SOAK_RATE),
    SANDBOX_REALMS: String(settings.SOAK_REALMS),
    PROCESSORS: String(settings.SOAK_PROCESSORS),
    SERVICE_NODE_OPTIONS: settings.SOAK_NODE_OPTIONS,
    LOG_LEVEL: "warn",
    // A store and sandbox of its own, made afresh: not the ones `npm start` keeps in .data.
    LOCAL_DATA_DIR: await mkdtemp(join(tmpdir(), "qbo-soak-")),
  },
  stdio: ["ignore", "pipe", "inherit"],
});
try {
  await running(launcher, 120_000);
  const samples = await sample(settings.SOAK_MINUTES * 60_000);
  await report(samples, await unprocessed(NATS_MONITOR));
} finally {
  if (launcher.exitCode === null) {
    launcher.kill("SIGTERM");
    await once(launcher, "exit");
  }
}

async function sample(durationMs: number): Promise<Sample[]> {
  const samples: Sample[] = [];
  const start = Date.now();
  while (Date.now() - start <= durationMs) {
    if (launcher.exitCode !== null || launcher.signalCode !== null)
      throw new Error(
        `the pipeline stopped ${Math.round((Date.now() - start) / 1000)} s into the soak (its output is above)`,
      );
    const rssMb = new Map<string, number>();
    for (const [name, pid] of await services(launcher.pid ?? 0)) rssMb.set(name, await residentMb(pid));
    samples.push({ atMs: Date.now() - start, rssMb, notifications: await notificationsAccepted() });
    await delay(SAMPLE_MS);
  }
  return samples;
}

async function notificationsAccepted(): Promise<number> {
  const text = await fetch(`${INGRESS_OPS}/metrics`)
    .then((r) => r.text())
    .catch(() => "");
  let total = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("qbo_webhook_requests_total{") && line.includes('code="200"')) {
      total += Number(line.split(" ").pop());
    }
  }
  return total;
}

async function report(samples: Sample[], waiting: number): Promise<void> {
  const warm = samples.filter((s) => s.atMs >= WARM_UP_MS);
  const first = warm.slice(0, 12);
  const last = warm.slice(-12);
  const names = [...new Set(samples.flatMap((s) => [...s.rssMb.keys()]))].sort();
  const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)] ?? 0;
  };
  const of = (set: Sample[], name: string) => set.map((s) => s.rssMb.get(name) ?? 0).filter((mb) => mb > 0);
  const rows: Row[] = names.map((name) => {
    const startMb = median(of(first, name));
    const endMb = median(of(last, name));
    const peakMb = Math.max(...of(samples, name));
    const growth = startMb > 0 ? (endMb - startMb) / startMb : 0;
    const ours = name !== "nats-server" && name !== "sandbox";
    return {
      process: name,
      "start MB": startMb,
      "end MB": endMb,
      "peak MB": peakMb,
      "growth %": growth * 100,
      target: ours ? (peakMb <= LIMIT_MB && growth < MAX_GROWTH ? "met" : "MISSED") : "(not ours)",
    };
  });
  const firstSample = warm[0];
  const lastSample = warm.at(-1);
  const rate =
    firstSample && lastSample && lastSample.atMs > firstSample.atMs
      ? (lastSample.notifications - firstSample.notifications) / ((lastSample.atMs - firstSample.atMs) / 1000)
      : 0;
  printTable(
    `Soak: ${settings.SOAK_MINUTES} min, ${rate.toFixed(1)} notifications/s accepted, ${settings.SOAK_PROCESSORS} processors, ` +
      `${settings.SOAK_REALMS} realms, NODE_OPTIONS "${settings.SOAK_NODE_OPTIONS}", ${waiting} notifications and events unprocessed at the end ` +
      `(targets: each service <= ${LIMIT_MB} MB, growth < ${MAX_GROWTH * 100} % from minute ${WARM_UP_MS / 60_000} to the end)`,
    rows,
  );
  const file = await writeResults("soak", {
    settings,
    notificationsPerSecond: rate,
    unprocessedAtEnd: waiting,
    rows,
    samples: samples.map((s) => ({ atMs: s.atMs, notifications: s.notifications, rssMb: Object.fromEntries(s.rssMb) })),
  });
  process.stdout.write(`\nwritten to ${file}\n`);
}
