import { bench, describe } from "vitest";
import { signIntuitPayload } from "./intuit-signature.js";
import { recognizeNotification } from "./recognize-notification.js";

// The largest notification QuickBooks documents: 100 CloudEvents (QBO.md §1b).
const events = Array.from({ length: 100 }, (_, i) => ({
  specversion: "1.0",
  id: `evt-${i}`,
  source: "intuit.bench",
  type: "qbo.invoice.updated.v1",
  datacontenttype: "application/json",
  time: "2026-01-10T21:31:25.179851517Z",
  intuitentityid: String(i),
  intuitaccountid: "310687",
  data: {},
}));
const body = Buffer.from(JSON.stringify(events));

describe("ingress hot path, 100-event notification", () => {
  bench("recognizeNotification", () => {
    recognizeNotification(body);
  });
  bench("signIntuitPayload (HMAC-SHA256)", () => {
    signIntuitPayload(body, "verifier-token");
  });
});
