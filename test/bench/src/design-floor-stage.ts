// One stage of the design's floor (design-floor.ts): the NATS round trips a pipeline stage must make for
// each change, in the same order and awaited the same way, with no work between them. Its mode is the
// stage it stands for; its last argument the port of an HTTP server (the ingress's intake; the others
// answer any request, which says they are up).
import { createServer } from "node:http";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { z } from "zod";
import { FloorStreams } from "./design-floor.js";

const Env = z.object({
  FLOOR_NATS_URL: z.string().min(1),
  /** Change events per notification, on average (a burst's notifications carry several). */
  FLOOR_EVENTS_PER_NOTIFICATION: z.coerce.number().min(1).default(1),
});
const env = Env.parse(process.env);
const mode = z.enum(["ingress", "ordering", "processor"]).parse(process.argv[2]);
const port = Number(process.argv[3]);

const nc = await connect({ servers: env.FLOOR_NATS_URL, noAsyncTraces: true });
const js = jetstream(nc);

/** A KV put's round trip: a publish to a stream keeping one message per key. */
const record = (key: number, data: Uint8Array) => js.publish(`${FloorStreams.records.subject}.${key % 64}`, data);

/** Consumes `from` one message at a time: `each` runs, then the message is acked (as ordering and the processor do). */
async function relay(from: string, durable: string, each: (data: Uint8Array, seq: number) => Promise<void>) {
  const jsm = await jetstreamManager(nc);
  await jsm.consumers.add(from, { durable_name: durable, ack_policy: AckPolicy.Explicit });
  const messages = await (await js.consumers.get(from, durable)).consume();
  for await (const message of messages) {
    await each(message.data, message.seq);
    message.ack();
  }
}

const server = createServer((req, res) => {
  if (mode !== "ingress" || req.method !== "POST") {
    res.writeHead(200).end();
    return;
  }
  // The ingress: the body, stored (PubAck), then the answer.
  const chunks: Buffer[] = [];
  req.on("data", (chunk: Buffer) => chunks.push(chunk));
  req.on("end", () => {
    js.publish(FloorStreams.notifications.subject, Buffer.concat(chunks)).then(
      () => res.writeHead(200, { "content-type": "application/json" }).end('{"status":"stored"}'),
      () => res.writeHead(503).end(),
    );
  });
}).listen(port, "127.0.0.1");

if (mode === "ordering")
  // Ordering: the notification's events published together (a wave), then what it knows recorded, then the ack.
  void relay(FloorStreams.notifications.name, "ordering", async (data, seq) => {
    // The n-th notification's share of the average, so that the events add up to it.
    const perNotification = env.FLOOR_EVENTS_PER_NOTIFICATION;
    const count = Math.floor(seq * perNotification) - Math.floor((seq - 1) * perNotification);
    const events = Array.from({ length: count }, () => js.publish(FloorStreams.events.subject, data));
    await Promise.all(events);
    await record(seq, data);
  });
if (mode === "processor")
  // The processor: the change published to the feed, then recorded in the copy, then the ack.
  void relay(FloorStreams.events.name, "processor", async (data, seq) => {
    await js.publish(FloorStreams.changes.subject, data);
    await record(seq, data);
  });

process.on("SIGTERM", () => {
  server.close();
  void nc.close().finally(() => process.exit(0));
});
