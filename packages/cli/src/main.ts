#!/usr/bin/env node
// qbo-webhooks: operate the pipeline from a terminal. `qbo-webhooks --help` lists the commands.
import { DLQ_STAGES, ENTITY_NAMES, type EntityName } from "@qbo-webhooks/contracts";
import { sampleCloudEventBody, sampleLegacyBody } from "@qbo-webhooks/contracts/testing";
import { type NatsAuth, NatsClient } from "@qbo-webhooks/messaging";
import { createLogger } from "@qbo-webhooks/observability";
import { ConfigError, loadNatsAuth } from "@qbo-webhooks/service-kit";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { listDeadLetters, readDeadLetter, replayDeadLetter, systemPartitions } from "./dead-letters.js";
import { cdcSummaryLine, disconnectRealm, openRealms, realmLines, requestCdc } from "./realms.js";
import { healthy, type OpsAddress, parseOpsAddresses, readStatus, statusLines } from "./status.js";
import { changeLine, tailChanges } from "./tail.js";
import { postSigned, sendLocalTestNotification } from "./test-notification.js";

/** A usage error: the command line is wrong, not the system (exit 2, as CLIs conventionally do). */
class UsageError extends Error {}

/** A realm id as QuickBooks gives them: digits only (it becomes part of a NATS subject). */
function realmIdArgument(text: string): string {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError("a realm id is digits only, such as 9130357766500000");
  return text;
}

const EXIT_CODES = `
Exit codes: 0 done, 1 failed (NATS unreachable, no such realm or letter, a CDC that did not finish),
            2 wrong command line.`;

function positiveInteger(what: string) {
  return (text: string): number => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < 1)
      throw new InvalidArgumentError(`${what} must be a whole number of at least 1`);
    return value;
  };
}

// `qbo-webhooks dlq list | head` closes our stdout early: the reader has what it wanted, so that
// ends the command quietly instead of with Node's stack trace for an unhandled EPIPE.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code !== "EPIPE") throw err;
  process.exit(0);
});

const program = new Command("qbo-webhooks")
  .description(
    "Operate a running qbo-webhooks pipeline: connected companies (realms), dead letters, test notifications.",
  )
  .option("--json", "machine-readable output (one JSON document)", false)
  .option("--nats <urls>", "NATS servers, comma-separated", process.env.NATS_URL ?? "nats://127.0.0.1:4222")
  .addHelpText(
    "after",
    `
Examples:
  $ qbo-webhooks realms list
  $ qbo-webhooks realms cdc 9130357766500000
  $ qbo-webhooks dlq list --stage processor
  $ qbo-webhooks dlq replay --all

NATS credentials come from the environment, as for the services: NATS_USER and NATS_PASSWORD, NATS_CREDS,
NATS_NKEY_SEED or NATS_TOKEN; TLS from NATS_CA, NATS_CERT and NATS_KEY.
${EXIT_CODES}`,
  )
  .showHelpAfterError("(run with --help for usage)")
  .showSuggestionAfterError()
  .exitOverride()
  .configureOutput({ outputError: (text, write) => write(`qbo-webhooks: ${text.replace(/^error: /, "")}`) });

const globals = (command: Command) => command.optsWithGlobals<{ json: boolean; nats: string }>();
const print = (command: Command, data: unknown, text: string) =>
  process.stdout.write(globals(command).json ? `${JSON.stringify(data)}\n` : `${text}\n`);

/** Runs `work` with a NATS connection (5 s to connect), drained afterwards. */
async function withNats<T>(command: Command, work: (client: NatsClient) => Promise<T>): Promise<T> {
  const { nats } = globals(command);
  let auth: NatsAuth;
  try {
    auth = loadNatsAuth(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw new UsageError(err.message);
  }
  const logger = createLogger({ service: "cli", level: "silent" });
  const client = await Promise.race([
    NatsClient.connect({ servers: nats.split(","), name: "qbo-webhooks-cli", logger, auth }),
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`cannot reach NATS at ${nats}: set --nats or NATS_URL`)), 5000).unref(),
    ),
  ]);
  try {
    return await work(client);
  } finally {
    await client.drain();
  }
}

const realms = program
  .command("realms")
  .description("connected companies: list, connect, disconnect, catch up")
  .addHelpText("after", EXIT_CODES);

realms
  .command("list")
  .description("connected companies: status, last webhook, last CDC, token expiry")
  .action(async (_options, command: Command) => {
    await withNats(command, async (client) => {
      const all = await (await openRealms(client)).list();
      print(command, all, realmLines(all));
    });
  });

realms
  .command("connect")
  .description("print the URL that connects a company (open it in a browser, operator token as password)")
  .option("--entities <types>", "entity types to follow, comma-separated (default: all the reconciler follows)")
  .option("--reconciler <url>", "the reconciler's ops address", process.env.RECONCILER_URL ?? "http://127.0.0.1:9093")
  .action((options: { entities?: string; reconciler: string }, command: Command) => {
    // Needs no NATS: the reconciler serves the flow.
    const url = new URL("/connect", options.reconciler);
    if (options.entities) url.searchParams.set("entities", options.entities);
    print(
      command,
      { url: url.toString() },
      `Open this in a browser (any user name, the operator token OPERATOR_TOKEN as password) and approve the company:\n  ${url}`,
    );
  });

realms
  .command("disconnect")
  .description("stop following a company and forget its tokens")
  .argument("<realmId>", "the company's realm id (see realms list)")
  .action(async (realmId: string, _options, command: Command) => {
    await withNats(command, async (client) => {
      const record = await disconnectRealm(client, await openRealms(client), realmId);
      print(command, record, `realm ${realmId} disconnected; connect it again with qbo-webhooks realms connect`);
    });
  });

realms
  .command("cdc")
  .description("run a CDC catch-up of a company now, following it to the end")
  .argument("<realmId>", "the company's realm id (see realms list)")
  .option("--no-wait", "only ask for it; the reconciler's leader runs it")
  .option("--timeout <seconds>", "how long to wait for the run", positiveInteger("--timeout"), 600)
  .action(async (realmId: string, options: { wait: boolean; timeout: number }, command: Command) => {
    await withNats(command, async (client) => {
      const record = await requestCdc(await openRealms(client), realmId, {
        wait: options.wait,
        showProgress: !globals(command).json && process.stderr.isTTY === true,
        timeoutMs: options.timeout * 1000,
      });
      print(
        command,
        record,
        options.wait ? cdcSummaryLine(record) : `CDC of ${realmId} requested; the reconciler's leader runs it`,
      );
    });
  });

const dlq = program.command("dlq").description("dead letters: list, show, replay").addHelpText("after", EXIT_CODES);
const stageOption = () => new Option("--stage <stage>", "only the letters of one stage").choices(DLQ_STAGES);

dlq
  .command("list")
  .description("dead letters with their stage and reason")
  .addOption(stageOption())
  .action(async (options: { stage?: string }, command: Command) => {
    await withNats(command, async (client) => {
      const letters = await listDeadLetters(client, options.stage);
      print(
        command,
        letters.map(({ body: _body, ...meta }) => meta),
        letters.length === 0
          ? "no dead letters"
          : letters
              .map((l) => `${String(l.seq).padStart(6)}  ${l.storedAt}  ${l.stage.padEnd(9)}  ${l.reason}`)
              .join("\n"),
      );
    });
  });

dlq
  .command("show")
  .description("one dead letter, with its body")
  .argument("<seq>", "its sequence number (see dlq list)", positiveInteger("the sequence number"))
  .action(async (seq: number, _options, command: Command) => {
    await withNats(command, async (client) => {
      const letter = await readDeadLetter(client, seq);
      if (!letter) throw new Error(`no dead letter ${seq}; see qbo-webhooks dlq list`);
      print(
        command,
        letter,
        `seq ${letter.seq} (${letter.stage}, ${letter.storedAt})\nreason: ${letter.reason}\n\n${letter.body}`,
      );
    });
  });

dlq
  .command("replay")
  .description("send dead letters back to the stage that failed, then remove them")
  .argument("[seq...]", "sequence numbers (see dlq list)")
  .option("--all", "every dead letter (of --stage, if given)", false)
  .addOption(stageOption())
  .option(
    "--partitions <n>",
    "partition count to route by (default: what the running system uses, read from NATS)",
    positiveInteger("--partitions"),
  )
  .action(
    async (seqTexts: string[], options: { all: boolean; stage?: string; partitions?: number }, command: Command) => {
      const seqs = seqTexts.map(positiveInteger("a sequence number"));
      if (!options.all && seqs.length === 0) throw new UsageError("dlq replay needs sequence numbers or --all");
      await withNats(command, async (client) => {
        const targets = options.all ? (await listDeadLetters(client, options.stage)).map((l) => l.seq) : seqs;
        const partitions = options.partitions ?? (await systemPartitions(client));
        const results = [];
        for (const seq of targets) results.push({ seq, subject: await replayDeadLetter(client, seq, partitions) });
        print(
          command,
          results,
          results.length ? results.map((r) => `replayed ${r.seq} to ${r.subject}`).join("\n") : "nothing to replay",
        );
      });
    },
  );

program
  .command("status")
  .description("is the pipeline healthy: services, backlog, dead letters, realms, leader, nats-server")
  .option(
    "--ops <addresses>",
    "services' ops addresses as name=url, comma-separated (default QBO_OPS_URLS, which npm start sets)",
    process.env.QBO_OPS_URLS ?? "",
  )
  .addHelpText(
    "after",
    `
Shows each service's /healthz and /readyz, when the last webhook arrived, the age of the oldest message
waiting in each work stream, pending messages per stream, dead letters per stage, realms by state, the
reconcilers' leader and the nats-server's version with the streams' storage and replicas.

Examples:
  $ qbo-webhooks status
  $ qbo-webhooks status --json
  $ qbo-webhooks status --ops ingress=http://10.0.0.5:9090,reconciler=http://10.0.0.6:9093

Exit codes: 0 healthy (every service given is up and ready, no dead letters), 1 not healthy or NATS
            unreachable, 2 wrong command line.`,
  )
  .action(async (options: { ops: string }, command: Command) => {
    let ops: OpsAddress[];
    try {
      ops = parseOpsAddresses(options.ops);
    } catch (err) {
      throw new UsageError(`--ops: ${err instanceof Error ? err.message : String(err)}`);
    }
    await withNats(command, async (client) => {
      const status = await readStatus(client, await openRealms(client), ops);
      print(
        command,
        status,
        statusLines(status) + (ops.length ? "" : "\n(no services probed: set --ops or QBO_OPS_URLS)"),
      );
      if (!healthy(status)) process.exitCode = 1;
    });
  });

program
  .command("tail")
  .description("print the change feed (QBO_CHANGES) as changes arrive, one line each, until Ctrl-C")
  .option("--all", "start from the oldest change kept, not from now", false)
  .option("--realm <realmId>", "only this company's changes", realmIdArgument)
  .addHelpText(
    "after",
    `
Each line: when the change happened (QuickBooks' time), realm, operation, entity and id, its SyncToken (or
"gone" after a Delete), and how long it took to apply. With --json, one JSON document per change per line.
Nothing stays on the NATS server after it stops: a viewer takes no work and is not counted as backlog.

Examples:
  $ npm run tail
  $ npm run tail -- --realm 9130357766500000 --all
  $ qbo-webhooks tail --json | jq .entity

Exit codes: 0 stopped (Ctrl-C, SIGTERM), 1 NATS unreachable, 2 wrong command line.`,
  )
  .action(async (options: { all: boolean; realm?: string }, command: Command) => {
    const { json } = globals(command);
    const stop = new AbortController();
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => stop.abort());
    await withNats(command, async (client) => {
      await tailChanges(
        client,
        { all: options.all, ...(options.realm ? { realmId: options.realm } : {}) },
        {
          show(change, raw) {
            if (json) process.stdout.write(`${raw}\n`);
            else if (change) process.stdout.write(`${changeLine(change)}\n`);
            else process.stderr.write(`(a message that is not a change: ${raw.slice(0, 200)})\n`);
          },
          following: () =>
            process.stderr.write(
              `following QBO_CHANGES${options.realm ? ` for realm ${options.realm}` : ""} (Ctrl-C stops)\n`,
            ),
        },
        stop.signal,
      );
    });
  });

program
  .command("send-test-notification")
  .description("send a signed test notification and follow it into the feed")
  .option("--realm <realmId>", "the company (default: the first connected one; with --url: a sample realm)")
  .addOption(new Option("--entity <type>", "the entity type to change").choices(ENTITY_NAMES).default("Customer"))
  .option("--legacy", "the legacy eventNotifications form (default: CloudEvents)", false)
  .option(
    "--timeout <seconds>",
    "how long to wait for the change in the feed (right after npm start, the companies' initial load is ahead of it)",
    positiveInteger("--timeout"),
    120,
  )
  .option("--url <url>", "an ingress of your own (a real deployment): only send, and report its answer")
  .option("--events <n>", "with --url: sample events in the notification", positiveInteger("--events"), 3)
  .addHelpText(
    "after",
    `
Against the instance \`npm start\` runs (found through .data/local.env: SANDBOX_URL, INGRESS_URL,
QBO_VERIFIER_TOKENS, NATS_*): changes an entity of a connected sandbox company without the sandbox
announcing it (an Update, or a Create when the company has none of that type), signs the notification
QuickBooks would have sent with the verifier token, POSTs it to the ingress, and waits until that
version of the entity arrives in the feed (QBO_CHANGES), printing the time it took.

With --url: signs a sample notification with QBO_VERIFIER_TOKENS' first token and POSTs it there. That
checks the ingress accepts the signature and stores the notification (200); it cannot check the feed
there: the sample names entities the company may not have, and those are dead-lettered. Follow that
deployment with qbo-webhooks dlq list and its feed.

Examples:
  $ npm run send-test-notification
  $ npm run send-test-notification -- --entity Invoice --legacy
  $ npm run send-test-notification -- --url https://hooks.example.com/webhooks/quickbooks --realm 9130357766500000

Exit codes: 0 arrived in the feed (with --url: stored, 200), 1 refused, unreachable or not in the feed
            in time, 2 wrong command line.`,
  )
  .action(
    async (
      options: { realm?: string; entity: EntityName; legacy: boolean; timeout: number; url?: string; events: number },
      command: Command,
    ) => {
      const verifierToken = process.env.QBO_VERIFIER_TOKENS?.split(",")[0]?.trim();
      if (options.url) {
        if (!verifierToken) throw new UsageError("set QBO_VERIFIER_TOKENS to the app's verifier token");
        const realmId = options.realm ?? "9130357766543216";
        const body = options.legacy
          ? sampleLegacyBody(
              realmId,
              Array.from({ length: options.events }, (_, i) => String(i + 1)),
            )
          : sampleCloudEventBody(options.events, { realmId });
        const answer = await postSigned({ url: options.url, verifierToken }, body, options.legacy);
        print(
          command,
          answer,
          `${answer.status} ${answer.text}
` +
            (answer.status === 200
              ? "stored: the ingress accepted the signature. Whether it reaches the feed is not checked from here (see --help)."
              : "not stored."),
        );
        if (answer.status !== 200) process.exitCode = 1;
        return;
      }
      const { SANDBOX_URL: sandboxUrl, INGRESS_URL: ingressUrl } = process.env;
      if (!sandboxUrl || !ingressUrl || !verifierToken) {
        throw new Error(
          "no local instance found (.data/local.env names none): start one with npm start, or name an ingress with --url",
        );
      }
      await withNats(command, async (client) => {
        const result = await sendLocalTestNotification(
          client,
          await openRealms(client),
          { sandboxUrl, ingress: { url: ingressUrl, verifierToken } },
          {
            ...(options.realm ? { realmId: options.realm } : {}),
            entity: options.entity,
            legacy: options.legacy,
            timeoutMs: options.timeout * 1000,
          },
        );
        print(
          command,
          result,
          `sent: ${result.operation} of ${result.entity} ${result.id} (SyncToken ${result.syncToken}) in company ${result.realmId}, ` +
            `unannounced by the sandbox, as a signed ${options.legacy ? "legacy" : "CloudEvents"} notification to ${ingressUrl}
` +
            `ingress: ${result.answer.status} ${result.answer.text}
` +
            `feed: arrived in QBO_CHANGES after ${(result.arrivedAfterMs / 1000).toFixed(2)} s`,
        );
      });
    },
  );

try {
  await program.parseAsync();
} catch (err) {
  if (err instanceof CommanderError) {
    // Help and version end well; every other complaint of the parser is about the command line.
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else if (err instanceof UsageError || err instanceof InvalidArgumentError) {
    process.stderr.write(`qbo-webhooks: ${err.message} (run with --help for usage)\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`qbo-webhooks: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
