// CPU per change: the whole local pipeline (`scripts/start-local.mjs`, each service its own process)
// under the sandbox's traffic at a steady rate, then at a burst rate; for each service the CPU time
// (user + system, from /proc) spent per 1,000 changes and its resident memory. The sandbox, nats-server
// and this process are measured apart (not ours). First it measures what a Node process's wake-up and
// round trips to another process cost on the machine (wake-up-cost.ts), the floor under a low rate's
// numbers; after each phase, the design's floor at its rates (design-floor.ts): bare stages making the
// same NATS round trips per change. Bounded: CPU_SECONDS of measurement per phase and per floor.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { printTable, type Row, readLastResults, writeResults } from "./bench-report.js";
import { measureDesignFloor } from "./design-floor.js";
import { createPool, oneChangeNotification, openLoop } from "./http-load.js";
import { running, services } from "./local-pipeline.js";
import { cpuRow, cpuSeconds, residentMb } from "./process-usage.js";
import { startServer, stopServer } from "./server-process.js";
import { measureWakeUpCost } from "./wake-up-cost.js";

const Settings = z.object({
  CPU_STEADY_RATE: z.coerce.number().min(1).max(500).default(50),
  CPU_BURST_RATE: z.coerce.number().min(1).max(1000).default(200),
  CPU_SECONDS: z.coerce.number().min(10).max(600).default(60),
  CPU_WARM_UP_SECONDS: z.coerce.number().min(0).max(300).default(20),
});
const settings = Settings.parse(process.env);
const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const CEILING_SERVER = fileURLToPath(new URL("./framework-ceiling-server.js", import.meta.url));
const ORDERING_OPS = "http://127.0.0.1:9091";
const INGRESS_OPS = "http://127.0.0.1:9090";
/** The pipeline's own stages: what "end to end" adds up. */
const PIPELINE = ["ingress", "ordering", "processor"];

/** Change events ordering has published so far: each is one change of one entity. */
async function changesPublished(): Promise<number> {
  const text = await fetch(`${ORDERING_OPS}/metrics`).then((r) => r.text());
  const line = /^qbo_ordering_events_total\{[^}]*result="published"[^}]*\} (\S+)$/m.exec(text);
  return Number(line?.[1] ?? 0);
}

/** Notifications the ingress answered 200 so far. */
async function notificationsAccepted(): Promise<number> {
  const text = await fetch(`${INGRESS_OPS}/metrics`).then((r) => r.text());
  let total = 0;
  for (const [, value] of text.matchAll(/^qbo_webhook_requests_total\{[^}]*code="200"[^}]*\} (\S+)$/gm))
    total += Number(value);
  return total;
}

async function cpuOf(pids: Map<string, number>): Promise<Map<string, number>> {
  const cpu = new Map<string, number>();
  for (const [name, pid] of pids) cpu.set(name, await cpuSeconds(pid));
  return cpu;
}

async function phase(
  name: string,
  rate: number,
): Promise<{ rows: Row[]; notificationsPerSecond: number; changesPerSecond: number }> {
  const launcher = spawn(process.execPath, [join(ROOT, "scripts", "start-local.mjs")], {
    cwd: ROOT,
    env: {
      ...process.env,
      SANDBOX_TRAFFIC_RATE: String(rate),
      PROCESSORS: "1",
      LOG_LEVEL: "warn",
      LOCAL_DATA_DIR: await mkdtemp(join(tmpdir(), "qbo-cpu-")),
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    await running(launcher, 180_000);
    await delay(settings.CPU_WARM_UP_SECONDS * 1000);
    const pids = await services(launcher.pid ?? 0);
    const [cpuBefore, changesBefore, notificationsBefore] = [
      await cpuOf(pids),
      await changesPublished(),
      await notificationsAccepted(),
    ];
    await delay(settings.CPU_SECONDS * 1000);
    const [cpuAfter, changesAfter, notificationsAfter] = [
      await cpuOf(pids),
      await changesPublished(),
      await notificationsAccepted(),
    ];
    const changes = changesAfter - changesBefore;
    const rows: Row[] = [];
    let pipelineMs = 0;
    for (const [process, pid] of [...pids].sort(([a], [b]) => a.localeCompare(b))) {
      const cpuMs = ((cpuAfter.get(process) ?? 0) - (cpuBefore.get(process) ?? 0)) * 1000;
      const stage = process.replace(/-\d+$/, "");
      if (PIPELINE.includes(stage)) pipelineMs += cpuMs;
      rows.push(
        cpuRow({
          phase: name,
          process: ["sandbox", "nats-server"].includes(stage) ? `${process} (not ours)` : process,
          changes,
          seconds: settings.CPU_SECONDS,
          cpuMs,
          rssMb: await residentMb(pid),
        }),
      );
    }
    rows.push(
      cpuRow({
        phase: name,
        process: "end to end (ingress + ordering + processor)",
        changes,
        seconds: settings.CPU_SECONDS,
        cpuMs: pipelineMs,
        rssMb: "–",
      }),
    );
    return {
      rows,
      notificationsPerSecond: (notificationsAfter - notificationsBefore) / settings.CPU_SECONDS,
      changesPerSecond: changes / settings.CPU_SECONDS,
    };
  } finally {
    if (launcher.exitCode === null) {
      launcher.kill("SIGTERM");
      await once(launcher, "exit");
    }
  }
}

/**
 * The floor under the ingress's row: a bare express handler (reads the body, answers 200, does
 * nothing) posted one-change notifications at the rate the pipeline's ingress took them, its CPU
 * counted per 1,000 of the phase's changes. On a machine whose cores sleep between requests, each
 * request pays for waking them, whatever it does.
 */
async function floor(name: string, rate: number, changesPerSecond: number): Promise<Row> {
  const server = await startServer([CEILING_SERVER, "express"], {}, async ({ url }) => {
    return (await fetch(`${url}/webhooks/quickbooks`, { method: "POST", body: "{}" })).status === 200;
  });
  const pool = createPool(server.url, 4);
  const request = oneChangeNotification();
  try {
    await openLoop(pool, rate, Math.min(5, settings.CPU_WARM_UP_SECONDS) || 1, request);
    const pid = server.child.pid ?? 0;
    const before = await cpuSeconds(pid);
    const result = await openLoop(pool, rate, settings.CPU_SECONDS, request);
    return cpuRow({
      phase: name,
      process: `bare express handler at ${(result.sent / settings.CPU_SECONDS).toFixed(0)} req/s, no work (floor)`,
      // Counted against the changes the phase made in as long.
      changes: changesPerSecond * settings.CPU_SECONDS,
      seconds: settings.CPU_SECONDS,
      cpuMs: ((await cpuSeconds(pid)) - before) * 1000,
      rssMb: await residentMb(pid),
    });
  } finally {
    await pool.close();
    await stopServer(server);
  }
}

/** A phase of the pipeline, then its floors at the rates its ingress took notifications and ordering made changes. */
async function phaseWithFloor(name: string, rate: number): Promise<Row[]> {
  const { rows, notificationsPerSecond, changesPerSecond } = await phase(name, rate);
  return [
    ...rows,
    await floor(name, Math.max(1, Math.round(notificationsPerSecond)), changesPerSecond),
    ...(await measureDesignFloor({
      phase: name,
      notificationsPerSecond,
      changesPerSecond,
      seconds: settings.CPU_SECONDS,
      warmUpSeconds: Math.min(5, settings.CPU_WARM_UP_SECONDS),
    })),
  ];
}

/** What an earlier run of this bench wrote: its rows are compared with this run's. */
const LastRun = z.object({
  measuredAt: z.string(),
  results: z.object({ rows: z.array(z.record(z.string(), z.union([z.string(), z.number()]))) }),
});

/** Each row of this run beside the last run's row of the same phase and process (rows without one are left out). */
function againstLastRun(rows: readonly Row[], lastRows: readonly Row[]): Row[] {
  const METRIC = "CPU ms / 1,000 changes";
  return rows.flatMap((row) => {
    const before = lastRows.find((last) => last.phase === row.phase && last.process === row.process)?.[METRIC];
    const now = row[METRIC];
    if (typeof before !== "number" || typeof now !== "number") return [];
    return [
      {
        phase: row.phase ?? "",
        process: row.process ?? "",
        "last run": before,
        "this run": now,
        "change %": (now / before - 1) * 100,
      },
    ];
  });
}

// First, while nothing else runs.
const wakeUps = await measureWakeUpCost();
const rows = [
  ...(await phaseWithFloor(`steady (${settings.CPU_STEADY_RATE} changes/s asked)`, settings.CPU_STEADY_RATE)),
  ...(await phaseWithFloor(`burst (${settings.CPU_BURST_RATE} changes/s asked)`, settings.CPU_BURST_RATE)),
];
printTable(
  `CPU per change: each service's user + system CPU per 1,000 changes over ${settings.CPU_SECONDS} s (target: end to end <= 2,000 ms)`,
  rows,
);
printTable(
  "What waking up and round trips cost a Node process on this machine, whatever it does (a floor at low rates)",
  wakeUps,
);
const last = LastRun.safeParse(await readLastResults("cpu-per-change"));
if (last.success)
  printTable(`Against the last run (${last.data.measuredAt})`, againstLastRun(rows, last.data.results.rows));
const file = await writeResults("cpu-per-change", { settings, rows, wakeUps });
process.stdout.write(`\nwritten to ${file}\n`);
