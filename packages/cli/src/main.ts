#!/usr/bin/env node
// qbo-webhooks: operate the pipeline from a terminal. `qbo-webhooks help` lists the commands.
import { parseArgs } from "node:util";
import { type NatsAuth, NatsClient } from "@qbo-webhooks/messaging";
import { createLogger } from "@qbo-webhooks/observability";
import { ConfigError, loadNatsAuth } from "@qbo-webhooks/service-kit";
import { listDeadLetters, readDeadLetter, replayDeadLetter, systemPartitions } from "./dead-letters.js";
import { disconnectRealm, openRealms, realmLines, requestCdc } from "./realms.js";

const USAGE = `usage: qbo-webhooks <command> [options]

  realms list                                     connected companies: status, last webhook, last CDC, tokens
  realms connect [--entities Customer,Invoice]    the URL that connects a company (open it in a browser; the
                                                  reconciler's ops port, asking for the operator token)
  realms disconnect <realmId>                     stop following a company and forget its tokens
  realms cdc <realmId> [--no-wait]                run a CDC catch-up for a company now, with progress
  dlq list [--stage ingress|ordering|processor|delivery]   dead letters with their reasons
  dlq show <seq>                                  one dead letter, with its body
  dlq replay <seq>... | --all [--stage S]         send back where it failed, then remove it

options: --json (machine-readable output), --nats URL (default NATS_URL or nats://127.0.0.1:4222),
         --partitions N (default: what the running system uses, read from NATS),
         --reconciler URL (its ops port; default RECONCILER_URL or http://127.0.0.1:9093), --timeout SECONDS (default 600)`;

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
      partitions: { type: "string" },
      reconciler: { type: "string", default: process.env.RECONCILER_URL ?? "http://127.0.0.1:9093" },
      entities: { type: "string" },
      wait: { type: "boolean", default: true },
      timeout: { type: "string", default: "600" },
    },
    allowNegative: true,
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
const COMMANDS: Record<string, readonly string[]> = {
  dlq: ["list", "show", "replay"],
  realms: ["list", "connect", "disconnect", "cdc"],
};
if (!COMMANDS[group]?.includes(command ?? "")) fail(`unknown command "${positionals.join(" ")}"`);
if (group === "realms" && command === "connect") {
  // Needs no NATS: the reconciler serves the flow.
  const url = new URL("/connect", values.reconciler);
  if (values.entities) url.searchParams.set("entities", values.entities);
  process.stdout.write(
    values.json
      ? `${JSON.stringify({ url: url.toString() })}\n`
      : `Open this in a browser (any user name, the operator token OPERATOR_TOKEN as password) and approve the company:\n  ${url}\n`,
  );
  process.exit(0);
}
const timeoutSeconds = Number(values.timeout);
if (!(timeoutSeconds > 0)) fail("--timeout must be a number of seconds above 0");
if (values.stage && !["ingress", "ordering", "processor", "delivery"].includes(values.stage))
  fail("--stage must be ingress, ordering, processor or delivery");
const partitionsFlag = values.partitions === undefined ? undefined : Number(values.partitions);
if (partitionsFlag !== undefined && (!Number.isInteger(partitionsFlag) || partitionsFlag < 1))
  fail("--partitions must be a whole number of at least 1");
const seqs = rest.map(Number);
if (seqs.some((n) => !Number.isInteger(n) || n < 1))
  fail("sequence numbers are whole numbers; see `qbo-webhooks dlq list`");

const logger = createLogger({ service: "cli", level: "silent" });
let auth: NatsAuth;
try {
  auth = loadNatsAuth(process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  fail(`${err.message}\n(NATS credentials: NATS_USER and NATS_PASSWORD, NATS_CREDS, NATS_NKEY_SEED or NATS_TOKEN)`);
}
const client = await Promise.race([
  NatsClient.connect({ servers: values.nats.split(","), name: "qbo-webhooks-cli", logger, auth }),
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
  if (group === "realms") {
    const realms = await openRealms(client);
    const realmId = rest[0];
    if (command === "list") {
      const all = await realms.list();
      print(all, realmLines(all));
    } else if (!realmId) {
      fail(`realms ${command} needs a realm id; see qbo-webhooks realms list`);
    } else if (command === "disconnect") {
      const record = await disconnectRealm(client, realms, realmId);
      print(record, `realm ${realmId} disconnected; connect it again with qbo-webhooks realms connect`);
    } else {
      const record = await requestCdc(realms, realmId, {
        wait: values.wait,
        showProgress: !values.json && process.stderr.isTTY === true,
        timeoutMs: timeoutSeconds * 1000,
      });
      print(
        record,
        values.wait
          ? `CDC of ${realmId} ${record.lastCdcResult ?? "finished"}; verified until ${new Date(record.verifiedUntil ?? 0).toISOString()}`
          : `CDC of ${realmId} requested; the reconciler's leader runs it`,
      );
    }
  } else if (command === "list") {
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
    const partitions = partitionsFlag ?? (await systemPartitions(client));
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
