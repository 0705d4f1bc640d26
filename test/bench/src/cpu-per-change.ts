// CPU per change: the whole local pipeline (`scripts/start-local.mjs`, each service its own process)
// under the sandbox's traffic at a steady rate, then at a burst rate; for each service the CPU time
// (user + system, from /proc) spent per 1,000 changes and its resident memory. The sandbox, nats-server
// and this process are measured apart (not ours). Bounded: CPU_SECONDS of measurement per phase.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { printTable, type Row, writeResults } from "./bench-report.js";
import { running, services } from "./local-pipeline.js";
import { cpuSeconds, residentMb } from "./process-usage.js";

const Settings = z.object({
  CPU_STEADY_RATE: z.coerce.number().min(1).max(500).default(50),
  CPU_BURST_RATE: z.coerce.number().min(1).max(1000).default(200),
  CPU_SECONDS: z.coerce.number().min(10).max(600).default(60),
  CPU_WARM_UP_SECONDS: z.coerce.number().min(0).max(300).default(20),
});
const settings = Settings.parse(process.env);
const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const ORDERING_OPS = "http://127.0.0.1:9091";
/** The pipeline's own stages: what "end to end" adds up. */
const PIPELINE = ["ingress", "ordering", "processor"];

/** Change events ordering has published so far: each is one change of one entity. */
async function changesPublished(): Promise<number> {
  const text = await fetch(`${ORDERING_OPS}/metrics`).then((r) => r.text());
  const line = /^qbo_ordering_events_total\{[^}]*result="published"[^}]*\} (\S+)$/m.exec(text);
  return Number(line?.[1] ?? 0);
}

async function cpuOf(pids: Map<string, number>): Promise<Map<string, number>> {
  const cpu = new Map<string, number>();
  for (const [name, pid] of pids) cpu.set(name, await cpuSeconds(pid));
  return cpu;
}

async function phase(name: string, rate: number): Promise<Row[]> {
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
    const [cpuBefore, changesBefore] = [await cpuOf(pids), await changesPublished()];
    await delay(settings.CPU_SECONDS * 1000);
    const [cpuAfter, changesAfter] = [await cpuOf(pids), await changesPublished()];
    const changes = changesAfter - changesBefore;
    const rows: Row[] = [];
    let pipelineMs = 0;
    for (const [process, pid] of [...pids].sort(([a], [b]) => a.localeCompare(b))) {
      const cpuMs = ((cpuAfter.get(process) ?? 0) - (cpuBefore.get(process) ?? 0)) * 1000;
      const stage = process.replace(/-\d+$/, "");
      if (PIPELINE.includes(stage)) pipelineMs += cpuMs;
      rows.push({
        phase: name,
        process: ["sandbox", "nats-server"].includes(stage) ? `${process} (not ours)` : process,
        "changes/s": changes / settings.CPU_SECONDS,
        "CPU ms / 1,000 changes": changes > 0 ? (cpuMs / changes) * 1000 : Number.NaN,
        "CPU % of a core": (cpuMs / (settings.CPU_SECONDS * 1000)) * 100,
        "RSS MB": await residentMb(pid),
      });
    }
    rows.push({
      phase: name,
      process: "end to end (ingress + ordering + processor)",
      "changes/s": changes / settings.CPU_SECONDS,
      "CPU ms / 1,000 changes": changes > 0 ? (pipelineMs / changes) * 1000 : Number.NaN,
      "CPU % of a core": (pipelineMs / (settings.CPU_SECONDS * 1000)) * 100,
      "RSS MB": "–",
    });
    return rows;
  } finally {
    if (launcher.exitCode === null) {
      launcher.kill("SIGTERM");
      await once(launcher, "exit");
    }
  }
}

const rows = [
  ...(await phase(`steady (${settings.CPU_STEADY_RATE} changes/s asked)`, settings.CPU_STEADY_RATE)),
  ...(await phase(`burst (${settings.CPU_BURST_RATE} changes/s asked)`, settings.CPU_BURST_RATE)),
];
printTable(
  `CPU per change: each service's user + system CPU per 1,000 changes over ${settings.CPU_SECONDS} s (target: end to end <= 2,000 ms)`,
  rows,
);
const file = await writeResults("cpu-per-change", { settings, rows });
process.stdout.write(`\nwritten to ${file}\n`);
