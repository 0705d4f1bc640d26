// The first minutes of a new user, timed: `npm start` on a fresh clone of this repository (install,
// nats-server, bundling, every service up and every sandbox company connected), `npm start` again
// after Ctrl-C, and read-only CLI calls against the running pipeline. Targets: first start ≤ 120 s,
// a later one ≤ 15 s, a CLI call well under 1 s.
//
// BENCH_START_COLD=1 also empties the caches a fresh machine would not have (npm's, Go's, and the
// nats-server kept per machine), so the first start downloads and builds everything.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { z } from "zod";
import { printTable, type Row, writeResults } from "./bench-report.js";
import { running, unprocessed } from "./local-pipeline.js";

const Settings = z.object({ BENCH_START_COLD: z.enum(["0", "1"]).default("0") });
const cold = Settings.parse(process.env).BENCH_START_COLD === "1";
const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const run = promisify(execFile);
const TARGETS_S = { first: 120, later: 15, cli: 1 };
const OFFSET = 200;

const work = await mkdtemp(join(tmpdir(), "qbo-start-bench-"));
const clone = join(work, "qbo-webhooks");
await run("git", ["clone", "--quiet", ROOT, clone]);
const env = {
  ...process.env,
  // Ports of its own, beside an `npm start` that may be running.
  LOCAL_PORT_OFFSET: String(OFFSET),
  SANDBOX_TRAFFIC_RATE: "2",
  ...(cold
    ? {
        npm_config_cache: join(work, "npm-cache"),
        XDG_CACHE_HOME: join(work, "cache"),
        GOCACHE: join(work, "go-build"),
        GOMODCACHE: join(work, "go-mod"),
      }
    : {}),
};
const rows: Row[] = [];
try {
  const first = await timedStart("first start of a fresh clone");
  await stop(first);
  const later = await timedStart("start after a stop");
  try {
    // "Once NATS is up" and the first full load is done: the CLI is timed on a pipeline at its usual pace.
    const idleSince = performance.now();
    while ((await unprocessed(`http://127.0.0.1:${8222 + OFFSET}`)) > 0 && performance.now() - idleSince < 600_000)
      await new Promise((resolve) => setTimeout(resolve, 2000));
    // As the README shows it (npm run), and the command itself (what `npm run` starts, less npm).
    const ways: [string, string, string[]][] = [
      ["npm run qbo-webhooks --", "npm", ["run", "--silent", "qbo-webhooks", "--"]],
      [
        "qbo-webhooks",
        process.execPath,
        ["--import", "./scripts/load-local-env.mjs", "packages/cli/dist/qbo-webhooks.mjs"],
      ],
    ];
    for (const [shown, command, prefix] of ways) {
      for (const words of [["realms", "list"], ["status"], ["dlq", "list"]]) {
        const seconds = await median(5, async () => {
          const begun = performance.now();
          // status exits 1 while a service is not ready yet: its answer time counts all the same.
          await run(command, [...prefix, ...words], { cwd: clone, env }).catch(() => undefined);
          return (performance.now() - begun) / 1000;
        });
        rows.push({ step: `${shown} ${words.join(" ")} (median of 5)`, seconds, target: `< ${TARGETS_S.cli}` });
      }
    }
  } finally {
    await stop(later);
  }
  printTable(
    `npm start and the CLI (${cold ? "cold: empty npm, Go and nats-server caches" : "this machine's caches"})`,
    rows,
  );
  process.stdout.write(`\nresults: ${await writeResults(cold ? "local-start-cold" : "local-start", { cold, rows })}\n`);
} finally {
  await rm(work, { recursive: true, force: true });
}

async function timedStart(step: string): Promise<ChildProcess> {
  const begun = performance.now();
  const child = spawn("npm", ["start"], { cwd: clone, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let setup = "";
  child.stderr?.on("data", (chunk: Buffer) => (setup += chunk.toString()));
  await running(child, 15 * 60_000);
  const seconds = (performance.now() - begun) / 1000;
  process.stderr.write(`${step}: running after ${seconds.toFixed(1)} s\n`);
  const target = step.startsWith("first") ? TARGETS_S.first : TARGETS_S.later;
  const steps = [...setup.matchAll(/^setup: (.+?): done in (\d+) s$/gm)].map(
    ([, what, s]) => `${what?.split(" (")[0]} ${s} s`,
  );
  rows.push({ step, seconds, target: `≤ ${target}`, "of which setup": steps.join(", ") || "-" });
  return child;
}

/** Ctrl-C, as a user stops it: npm and everything it started. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.pid === undefined) return;
  process.kill(-child.pid, "SIGINT");
  await once(child, "exit");
}

async function median(times: number, measure: () => Promise<number>): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < times; i++) values.push(await measure());
  values.sort((a, b) => a - b);
  return values[Math.floor(values.length / 2)] ?? Number.NaN;
}
