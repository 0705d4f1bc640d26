// The design's floor under CPU per change: three bare Node processes (design-floor-stage.ts) making the
// NATS round trips the pipeline's three stages make for each change, awaited in the same order, with no
// work between them, at the rates a phase of cpu-per-change ran. Their CPU is counted like the services'.
// What a stage spends above its floor is its own work; the floor itself no code of ours saves without
// giving up one of those round trips. It leaves out what the pipeline does besides: verifying and
// parsing, judging, QuickBooks' API calls, reading our copy, spans, metrics and logs.
import { fileURLToPath } from "node:url";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import type { Row } from "./bench-report.js";
import { createPool, oneChangeNotification, openLoop } from "./http-load.js";
import { cpuRow, cpuSeconds, residentMb } from "./process-usage.js";
import { type Server, startServer, stopServer } from "./server-process.js";

export const FloorStreams = {
  notifications: { name: "FLOOR_NOTIFICATIONS", subject: "floor.notifications" },
  events: { name: "FLOOR_EVENTS", subject: "floor.events" },
  changes: { name: "FLOOR_CHANGES", subject: "floor.changes" },
  /** Shaped like a KV bucket's stream (one message per key): a KV put is a publish to it. */
  records: { name: "FLOOR_RECORDS", subject: "floor.records" },
} as const;

const STAGE = fileURLToPath(new URL("./design-floor-stage.js", import.meta.url));
const STAGES = ["ingress", "ordering", "processor"] as const;

export interface FloorRun {
  readonly phase: string;
  readonly notificationsPerSecond: number;
  readonly changesPerSecond: number;
  readonly seconds: number;
  readonly warmUpSeconds: number;
}

/** One row per stage and one for the three together, in cpu-per-change's columns. */
export async function measureDesignFloor(run: FloorRun): Promise<Row[]> {
  const nats = await NatsServerProcess.start();
  const stages: Server[] = [];
  try {
    const nc = await connect({ servers: nats.url, noAsyncTraces: true });
    const jsm = await jetstreamManager(nc);
    for (const { name, subject } of Object.values(FloorStreams))
      await jsm.streams.add({
        name,
        subjects: [subject, `${subject}.>`],
        max_msgs_per_subject: name === FloorStreams.records.name ? 1 : -1,
      });
    const changesStored = async () => (await jsm.streams.info(FloorStreams.changes.name)).state.messages;
    const env = {
      FLOOR_NATS_URL: nats.url,
      FLOOR_EVENTS_PER_NOTIFICATION: String(Math.max(1, run.changesPerSecond / run.notificationsPerSecond)),
    };
    const startStage = (mode: (typeof STAGES)[number]) =>
      startServer([STAGE, mode], env, async ({ url }) => (await fetch(url)).status === 200);
    // In STAGES' order, which the rows below follow; each is stopped in `finally` once started.
    const ingress = await startStage("ingress");
    stages.push(ingress);
    for (const mode of STAGES.slice(1)) stages.push(await startStage(mode));
    const pool = createPool(ingress.url, 4);
    const request = oneChangeNotification();
    const rate = Math.max(1, Math.round(run.notificationsPerSecond));
    const cpuOfStages = () => Promise.all(stages.map((stage) => cpuSeconds(stage.child.pid ?? 0)));
    try {
      if (run.warmUpSeconds > 0) await openLoop(pool, rate, run.warmUpSeconds, request);
      const [cpuBefore, changesBefore] = [await cpuOfStages(), await changesStored()];
      await openLoop(pool, rate, run.seconds, request);
      const [cpuAfter, changesAfter] = [await cpuOfStages(), await changesStored()];
      const changes = changesAfter - changesBefore;
      const row = (process: string, cpuMs: number, rssMb: number | string): Row =>
        cpuRow({ phase: run.phase, process, changes, seconds: run.seconds, cpuMs, rssMb });
      const cpuMs = STAGES.map((_, i) => ((cpuAfter[i] ?? 0) - (cpuBefore[i] ?? 0)) * 1000);
      const rows: Row[] = [];
      for (const [i, mode] of STAGES.entries())
        rows.push(row(`design floor: ${mode}`, cpuMs[i] ?? 0, await residentMb(stages[i]?.child.pid ?? 0)));
      rows.push(
        row(
          "design floor: end to end",
          cpuMs.reduce((sum, ms) => sum + ms, 0),
          "–",
        ),
      );
      return rows;
    } finally {
      await pool.close();
      await nc.close();
    }
  } finally {
    for (const stage of stages) if (stage.child.exitCode === null) await stopServer(stage);
    await nats.dispose();
  }
}
