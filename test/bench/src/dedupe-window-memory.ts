// What QBO_WEBHOOKS' 3-hour duplicate window costs nats-server in memory: unique notifications
// are published (as the ingress does, one Nats-Msg-Id each) and consumed away, so the stream stays
// small while the window keeps every id; the server's RSS is read after each step and the cost per
// id extrapolated to 10,000 notifications a minute (1.8 million ids in the window). Bounded: a
// fixed count, loopback only.
import { readFile } from "node:fs/promises";
import { Streams, Subjects } from "@qbo-webhooks/contracts";
import { ensureStream, NatsClient, publishDurable } from "@qbo-webhooks/messaging";
import { NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import { logger } from "@qbo-webhooks/processor/testing";
import { printTable, type Row, writeResults } from "./bench-report.js";

const STEP = Number(process.env.BENCH_DEDUPE_STEP ?? 100_000);
const STEPS = Number(process.env.BENCH_DEDUPE_STEPS ?? 3);
const IN_FLIGHT = 256;
// A one-change CloudEvents notification is about 450 bytes.
const BODY = new Uint8Array(450).fill(0x7b);
const WINDOW_IDS = 10_000 * 60 * (Streams.webhooks.duplicateWindowMs / 3_600_000);

async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  if (!kb) throw new Error(`no VmRSS for ${pid}`);
  return Number(kb) * 1024;
}

const server = await NatsServerProcess.start();
const client = await NatsClient.connect({ servers: [server.url], name: "bench", logger });
try {
  const pid = server.pid;
  if (pid === undefined) throw new Error("nats-server has no pid");
  await ensureStream(client.jsm, Streams.webhooks, { replicas: 1 });
  const rows: Row[] = [];
  const baseline = await rssBytes(pid);
  rows.push({ "ids in window": 0, "RSS MiB": baseline / 2 ** 20, "bytes / id": 0 });
  let sent = 0;
  for (let step = 1; step <= STEPS; step++) {
    const end = sent + STEP;
    const workers = Array.from({ length: IN_FLIGHT }, async () => {
      while (sent < end) {
        const id = sent++;
        await publishDurable(client, Subjects.webhooks, BODY, { msgId: `bench-${id}`, timeoutMs: 10_000 });
      }
    });
    await Promise.all(workers);
    // Consumed, as ordering would: the messages go, their ids stay in the window.
    await client.jsm.streams.purge(Streams.webhooks.name);
    const rss = await rssBytes(pid);
    rows.push({ "ids in window": end, "RSS MiB": rss / 2 ** 20, "bytes / id": (rss - baseline) / end });
  }
  const last = rows.at(-1);
  const perId = Number(last?.["bytes / id"] ?? 0);
  rows.push({
    "ids in window": `${WINDOW_IDS} (10,000/min × 3 h, extrapolated)`,
    "RSS MiB": (baseline + perId * WINDOW_IDS) / 2 ** 20,
    "bytes / id": perId,
  });
  printTable("QBO_WEBHOOKS duplicate window: nats-server memory", rows);
  process.stdout.write(`\nresults: ${await writeResults("dedupe-window-memory", rows)}\n`);
} finally {
  await client.drain();
  await server.dispose();
}
