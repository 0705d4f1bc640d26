// Sends one signed QuickBooks-style notification to a running ingress and prints the answer.
// Usage: npm run send-test-notification -- [--legacy] [--events N] [--realm ID] [--url URL]
import { parseArgs } from "node:util";
import { signIntuitPayload } from "@qbo-webhooks/contracts";
import { sampleCloudEventBody, sampleLegacyBody } from "@qbo-webhooks/contracts/testing";

const { values } = parseArgs({
  options: {
    legacy: { type: "boolean", default: false },
    events: { type: "string", default: "3" },
    realm: { type: "string", default: "9130357766543216" },
    url: { type: "string", default: `http://127.0.0.1:${process.env.HTTP_PORT ?? 8080}/webhooks/quickbooks` },
  },
});
const count = Number(values.events);
if (!Number.isInteger(count) || count < 1) {
  console.error("--events must be a whole number of at least 1");
  process.exit(2);
}
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
