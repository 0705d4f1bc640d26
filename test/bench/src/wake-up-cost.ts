// What waking up and talking to another process cost a Node process on this machine, whatever it
// does: the floor under CPU per change at a low rate. There each stage sleeps between changes, wakes
// for one, then waits on round trips to nats-server (a PubAck, a KV reply), each a short sleep and a
// wake-up of its own. Measured in this process (user + system CPU) against an echo process on
// loopback, before anything else runs.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { connect, type Socket } from "node:net";
import { setImmediate as nextTurn, setTimeout as sleep } from "node:timers/promises";
import { freePort } from "@qbo-webhooks/messaging/testing";
import type { Row } from "./bench-report.js";

/** Steady traffic's gap between changes (50 a second). */
const GAP_MS = 20;
const SPACED_SECONDS = 8;
/** Round trips in a row after each wake-up, as ordering makes for one change (publish, record). */
const ROUND_TRIPS = 3;
const BACK_TO_BACK_WRITES = 100_000;
/** About one NATS publish of a change event; the echo answers with the same bytes. */
const MESSAGE = Buffer.alloc(300, "x");

const ECHO = `require("node:net").createServer((s) => s.pipe(s)).listen(Number(process.argv[1]), "127.0.0.1", () => console.log("up"));`;

/** Sends MESSAGE and resolves once the echo has sent all of it back. */
function roundTrip(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    let pending = MESSAGE.length;
    const onData = (chunk: Buffer) => {
      pending -= chunk.length;
      if (pending > 0) return;
      socket.off("data", onData);
      resolve();
    };
    socket.on("data", onData);
    socket.write(MESSAGE);
  });
}

/** CPU (µs) per wake-up: sleep GAP_MS, then `work`, for SPACED_SECONDS. */
async function perWakeUp(work: () => Promise<void>): Promise<number> {
  const count = Math.round((SPACED_SECONDS * 1000) / GAP_MS);
  const started = process.cpuUsage();
  for (let i = 0; i < count; i++) {
    await sleep(GAP_MS);
    await work();
  }
  const used = process.cpuUsage(started);
  return (used.user + used.system) / count;
}

async function perBackToBackWrite(socket: Socket): Promise<number> {
  const started = process.cpuUsage();
  for (let i = 0; i < BACK_TO_BACK_WRITES; i++) {
    if (i % 1_000 === 0) await nextTurn(); // let the socket drain now and then
    socket.write(MESSAGE);
  }
  const used = process.cpuUsage(started);
  return (used.user + used.system) / BACK_TO_BACK_WRITES;
}

export async function measureWakeUpCost(): Promise<Row[]> {
  const port = await freePort();
  const echo = spawn(process.execPath, ["-e", ECHO, String(port)], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    await once(echo.stdout, "data");
    const socket = connect(port, "127.0.0.1").setNoDelay(true);
    await once(socket, "connect");
    const idle = await perWakeUp(async () => {});
    const one = await perWakeUp(() => roundTrip(socket));
    const several = await perWakeUp(async () => {
      for (let i = 0; i < ROUND_TRIPS; i++) await roundTrip(socket);
    });
    socket.on("data", () => {}); // the echoes of the writes below
    const backToBack = await perBackToBackWrite(socket);
    socket.destroy();
    const row = (what: string, micros: number): Row => ({ what, "CPU µs": micros });
    return [
      row(`a timer wakes the process every ${GAP_MS} ms, nothing else (per wake-up)`, idle),
      row(`the same, then one ${MESSAGE.length}-byte round trip to a loopback echo (per wake-up)`, one),
      row(`the same, then ${ROUND_TRIPS} round trips in a row (per wake-up)`, several),
      row("so the first round trip after a sleep costs", one - idle),
      row("and each further round trip", (several - one) / (ROUND_TRIPS - 1)),
      row(`${MESSAGE.length}-byte writes back to back (per write)`, backToBack),
    ];
  } finally {
    echo.kill();
  }
}
