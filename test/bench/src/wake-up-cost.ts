// What waking up and writing to a socket cost a Node process on this machine, whatever it does: the
// floor under CPU per change at a low rate, where every change wakes each stage several times (its
// message, each reply from nats-server) and each write to nats-server goes alone. Measured in this
// process (user + system CPU) against a sink process on loopback, before anything else runs.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { connect, type Socket } from "node:net";
import { setImmediate as nextTurn, setTimeout as sleep } from "node:timers/promises";
import { freePort } from "@qbo-webhooks/messaging/testing";
import type { Row } from "./bench-report.js";

/** Steady traffic's gap between changes (50 a second). */
const GAP_MS = 20;
const SPACED_SECONDS = 8;
const BACK_TO_BACK_WRITES = 100_000;
/** About one NATS publish of a change event. */
const WRITE = Buffer.alloc(300, "x");

const SINK = `require("node:net").createServer((s) => s.resume()).listen(Number(process.argv[1]), "127.0.0.1", () => console.log("up"));`;

function cpuMicros(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return used.user + used.system;
}

/** CPU per iteration of `step`, run `count` times, each after a GAP_MS sleep when spaced. */
async function perIteration(count: number, spaced: boolean, step: () => void): Promise<number> {
  const started = process.cpuUsage();
  for (let i = 0; i < count; i++) {
    if (spaced) await sleep(GAP_MS);
    else if (i % 1_000 === 0) await nextTurn(); // let the socket drain now and then
    step();
  }
  return cpuMicros(started) / count;
}

export async function measureWakeUpCost(): Promise<Row[]> {
  const port = await freePort();
  const sink = spawn(process.execPath, ["-e", SINK, String(port)], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    await once(sink.stdout, "data");
    const socket: Socket = connect(port, "127.0.0.1").setNoDelay(true);
    await once(socket, "connect");
    const spaced = Math.round((SPACED_SECONDS * 1000) / GAP_MS);
    const wakeUp = await perIteration(spaced, true, () => {});
    const wakeUpAndWrite = await perIteration(spaced, true, () => socket.write(WRITE));
    const backToBack = await perIteration(BACK_TO_BACK_WRITES, false, () => socket.write(WRITE));
    socket.destroy();
    const row = (what: string, micros: number): Row => ({ what, "CPU µs": micros });
    return [
      row(`a timer wakes the process every ${GAP_MS} ms, nothing else (per wake-up)`, wakeUp),
      row(`the same, and each wake-up writes ${WRITE.length} bytes to a loopback socket (per wake-up)`, wakeUpAndWrite),
      row("so one write after a wake-up costs", wakeUpAndWrite - wakeUp),
      row(`${WRITE.length}-byte writes back to back (per write)`, backToBack),
    ];
  } finally {
    sink.kill();
  }
}
