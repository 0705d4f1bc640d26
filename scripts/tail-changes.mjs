// `npm run tail`: prints the change feed (stream QBO_CHANGES) as it arrives, one line per change.
import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { parseOrExit } from "./cli-args.mjs";

const USAGE = `Usage: npm run tail -- [--all] [--realm ID]

Prints the change feed (stream QBO_CHANGES) as changes arrive, one line each: when the change
happened, realm, operation, entity and id, its SyncToken (or "gone"), and how long it took to apply.

Options:
  --all         start from the oldest change kept, not from now
  --realm ID    only this company's changes
  -h, --help    this help

Environment: NATS_URL (nats://127.0.0.1:4222); NATS_USER and NATS_PASSWORD, or NATS_TOKEN (npm start's
operator credentials are passed from .data/local.env).

Example:
  $ npm run tail -- --realm 9130357766500000

Exit codes: 0 stopped with Ctrl-C, 1 NATS unreachable, 2 wrong command line.`;

const values = parseOrExit("npm run tail", USAGE, {
  all: { type: "boolean", default: false },
  realm: { type: "string" },
});
const nc = await connect({
  servers: process.env.NATS_URL ?? "nats://127.0.0.1:4222",
  ...(process.env.NATS_USER ? { user: process.env.NATS_USER, pass: process.env.NATS_PASSWORD ?? "" } : {}),
  ...(process.env.NATS_TOKEN ? { token: process.env.NATS_TOKEN } : {}),
}).catch((err) => {
  console.error(`cannot reach NATS: ${err.message}. Is \`npm start\` running?`);
  process.exit(1);
});
const js = jetstream(nc);
const consumer = await js.consumers.get("QBO_CHANGES", {
  filter_subjects: [values.realm ? `qbo.changes.${values.realm}.*` : "qbo.changes.>"],
  deliver_policy: values.all ? DeliverPolicy.All : DeliverPolicy.New,
});
console.log(`following QBO_CHANGES${values.realm ? ` for realm ${values.realm}` : ""} (Ctrl-C stops)`);
process.on("SIGINT", () => void nc.close().then(() => process.exit(0)));
for await (const msg of await consumer.consume()) {
  const change = msg.json();
  const what = change.data ? `SyncToken ${change.data.SyncToken}` : "gone";
  const lag = ((Date.parse(change.appliedAt) - Date.parse(change.occurredAt)) / 1000).toFixed(2);
  console.log(
    `${change.occurredAt}  realm ${change.realmId}  ${change.operation.padEnd(7)} ${change.entity} ${change.id}  ${what}  (+${lag}s)`,
  );
}
