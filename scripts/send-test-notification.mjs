// Sends one signed QuickBooks-style notification to a running ingress and prints the answer.
import { signIntuitPayload } from "@qbo-webhooks/contracts";
import { sampleCloudEventBody, sampleLegacyBody } from "@qbo-webhooks/contracts/testing";
import { parseOrExit, usageError } from "./cli-args.mjs";

const defaultUrl = `http://127.0.0.1:${process.env.HTTP_PORT ?? 8080}/webhooks/quickbooks`;
const USAGE = `Usage: npm run send-test-notification -- [--legacy] [--events N] [--realm ID] [--url URL]

Signs a QuickBooks-style notification with the verifier token (QBO_VERIFIER_TOKENS, or npm start's
local one) and POSTs it to an ingress; prints the status and answer.

Options:
  --legacy      the legacy eventNotifications form (default: CloudEvents)
  --events N    events in it (default 3)
  --realm ID    the company it names (default 9130357766543216)
  --url URL     the ingress (default ${defaultUrl})
  -h, --help    this help

Example:
  $ npm run send-test-notification -- --legacy --events 1

Exit codes: 0 stored (200), 1 refused or unreachable, 2 wrong command line.`;

const values = parseOrExit("npm run send-test-notification", USAGE, {
  legacy: { type: "boolean", default: false },
  events: { type: "string", default: "3" },
  realm: { type: "string", default: "9130357766543216" },
  url: { type: "string", default: defaultUrl },
});
const count = Number(values.events);
if (!Number.isInteger(count) || count < 1)
  usageError("npm run send-test-notification", USAGE, "--events must be a whole number of at least 1");
const token = (process.env.QBO_VERIFIER_TOKENS ?? "local-verifier-token").split(",")[0].trim();
const ids = Array.from({ length: count }, (_, i) => String(i + 1));
const body = values.legacy
  ? sampleLegacyBody(values.realm, ids)
  : sampleCloudEventBody(count, { realmId: values.realm });

try {
  const response = await fetch(values.url, {
    method: "POST",
    headers: {
      "content-type": values.legacy ? "application/json" : "application/cloudevents+json",
      "intuit-signature": signIntuitPayload(body, token),
    },
    body,
  });
  console.log(`${response.status} ${await response.text()}`);
  process.exit(response.ok ? 0 : 1);
} catch (err) {
  console.error(`could not reach ${values.url}: ${err.cause?.message ?? err.message}. Is \`npm start\` running?`);
  process.exit(1);
}
