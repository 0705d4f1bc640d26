import { recognizeNotification } from "@qbo-webhooks/contracts";
import { describe, expect, it } from "vitest";
import type { ChangeRecord } from "../company/company.js";
import { buildBodies } from "./notification-body.js";

const changes: ChangeRecord[] = [1, 2, 3, 4].flatMap((n) => [
  { realmId: "9", entity: "Invoice", id: String(n), operation: "Void", at: Date.parse("2026-11-01T10:00:00.250Z") + n },
  {
    realmId: "9",
    entity: "Customer",
    id: String(n),
    operation: "Merge",
    at: Date.parse("2026-11-01T10:00:01.500Z") + n,
    deletedId: String(n + 10),
  },
]);

// QuickBooks spells some things two ways; a sandbox that sent one of each would hide a reader that knows only one.
describe("notification bodies", () => {
  it("notifications - CloudEvents name a void both `void` and `voided` (QBO.md §1b)", () => {
    const [body] = buildBodies(changes, "cloudevents", "intuit.app");
    const types = new Set(JSON.parse(body?.text ?? "[]").map((e: { type: string }) => e.type));
    expect(types).toEqual(new Set(["qbo.invoice.void.v1", "qbo.invoice.voided.v1", "qbo.customer.merged.v1"]));
    expect(recognizeNotification(Buffer.from(body?.text ?? ""))).toMatchObject({ kind: "notification", eventCount: 8 });
  });

  it("notifications - legacy bodies carry lastUpdated in both formats and deletedId spelled both ways (QBO.md §1a)", () => {
    const [body] = buildBodies(changes, "legacy", "intuit.app");
    const entities = JSON.parse(body?.text ?? "{}").eventNotifications[0].dataChangeEvent.entities;
    const formats = new Set(
      entities.map((e: { lastUpdated: string }) => (e.lastUpdated.endsWith("Z") ? "Z" : e.lastUpdated.slice(-5))),
    );
    expect(formats).toEqual(new Set(["Z", "-0800"]));
    const spellings = new Set(
      entities.flatMap((e: Record<string, unknown>) => Object.keys(e).filter((k) => /^deletedI[dD]$/.test(k))),
    );
    expect(spellings).toEqual(new Set(["deletedId", "deletedID"]));
    expect(recognizeNotification(Buffer.from(body?.text ?? ""))).toMatchObject({ kind: "notification", eventCount: 8 });
  });
});
