#!/usr/bin/env node
// qbo-webhooks: operate the pipeline from a terminal. `qbo-webhooks help` lists the commands.
import { parseArgs } from "node:util";
import { NatsClient } from "@qbo-webhooks/messaging";
import { createLogger } from "@qbo-webhooks/observability";
import { listDeadLetters, readDeadLetter, replayDeadLetter } from "./dead-letters.js";

const USAGE = `usage: qbo-webhooks <command> [options]

  dlq list [--stage ingress|ordering|processor|delivery]   dead letters with their reasons
  dlq show <seq>                                  one dead letter, with its body
  dlq replay <seq>... | --all [--stage S]         send back where it failed, then remove it

options: --json (machine-readable output), --nats URL (default NATS_URL or nats://127.0.0.1:4222),
         --partitions N (default PARTITIONS or 64; must match the processors)`;

function fail(message: string): never {
  process.stderr.write(`qbo-webhooks: ${message}\n\n${USAGE}\n`);
  process.exit(2);
}

let parsed: ReturnType<typeof parse>;
function parse() {
  return parseArgs({
    allowPositionals: true,
    options: {
      json: { type: "boolean", default: false },
      all: { type: "boolean", default: false },
      stage: { type: "string" },
      nats: { type: "string", default: process.env.NATS_URL ?? "nats://127.0.0.1:4222" },
      partitions: { type: "string", default: process.env.PARTITIONS ?? "64" },
    },
  });
}
try {
  parsed = parse();
} catch (err) {
  fail((err as Error).message);
}
const { values, positionals } = parsed;
const [group, command, ...rest] = positionals;
if (!group || group === "help") {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (group !== "dlq" || !["list", "show", "replay"].includes(command ?? ""))
  fail(`unknown command "${positionals.join(" ")}"`);
if (values.stage && !["ingress", "ordering", "processor", "delivery"].includes(values.stage))
  fail("--stage must be ingress, ordering, processor or delivery");
const partitions = Number(values.partitions);
if (!Number.isInteger(partitions) || partitions < 1) fail("--partitions must be a whole number of at least 1");
const seqs = rest.map(Number);
if (seqs.some((n) => !Number.isInteger(n) || n < 1))
  fail("sequence numbers are whole numbers; see `qbo-webhooks dlq list`");

const logger = createLogger({ service: "cli", level: "silent" });
const client = await Promise.race([
  NatsClient.connect({ servers: values.nats.split(","), name: "qbo-webhooks-cli", logger }),
  new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`cannot reach NATS at ${values.nats}`)), 5000).unref(),
  ),
]).catch((err: Error) => {
  process.stderr.write(`qbo-webhooks: ${err.message}. Set --nats or NATS_URL.\n`);
  process.exit(1);
});
const print = (data: unknown, text: string) =>
  process.stdout.write(values.json ? `${JSON.stringify(data)}\n` : `${text}\n`);

try {
  if (command === "list") {
    const letters = await listDeadLetters(client, values.stage);
    print(
      letters.map(({ body: _body, ...meta }) => meta),
      letters.length === 0
        ? "no dead letters"
        : letters
            .map((l) => `${String(l.seq).padStart(6)}  ${l.storedAt}  ${l.stage.padEnd(9)}  ${l.reason}`)
            .join("\n"),
    );
  } else if (command === "show") {
    if (seqs.length !== 1) fail("dlq show takes one sequence number");
    const letter = await readDeadLetter(client, seqs[0] as number);
    if (!letter) fail(`no dead letter ${seqs[0]}`);
    print(
      letter,
      `seq ${letter.seq} (${letter.stage}, ${letter.storedAt})\nreason: ${letter.reason}\n\n${letter.body}`,
    );
  } else {
    if (!values.all && seqs.length === 0) fail("dlq replay needs sequence numbers or --all");
    const targets = values.all ? (await listDeadLetters(client, values.stage)).map((l) => l.seq) : seqs;
    const results = [];
    for (const seq of targets) results.push({ seq, subject: await replayDeadLetter(client, seq, partitions) });
    print(
      results,
      results.length ? results.map((r) => `replayed ${r.seq} to ${r.subject}`).join("\n") : "nothing to replay",
    );
  }
} catch (err) {
  process.stderr.write(`qbo-webhooks: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await client.drain();
}
