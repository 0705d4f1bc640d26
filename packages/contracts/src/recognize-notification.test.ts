import { describe, expect, it } from "vitest";
import { recognizeNotification } from "./recognize-notification.js";

const bytes = (value: unknown) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value));

const cloudEvent = (overrides: Record<string, unknown> = {}) => ({
  specversion: "1.0",
  id: "88cd52aa-33b6-4351-9aa4-47572edbd068",
  source: "intuit.dsnBgbseACLLRZNxo2dfc4evmEJdxde58xeeYcZliOU=",
  type: "qbo.account.created.v1",
  datacontenttype: "application/json",
  time: "2025-09-10T21:31:25.179851517Z",
  intuitentityid: "1234",
  intuitaccountid: "310687",
  data: {},
  ...overrides,
});

const legacy = (entities: unknown[]) => ({
  eventNotifications: [{ realmId: "1185883450", dataChangeEvent: { entities } }],
});

describe("recognize-notification", () => {
  it("recognize-notification - reads QuickBooks' CloudEvents sample (QBO.md §1b)", () => {
    const result = recognizeNotification(bytes([cloudEvent()]));
    expect(result).toMatchObject({ kind: "notification", form: "cloudevents", eventCount: 1 });
    if (result.kind !== "notification" || result.form !== "cloudevents") throw new Error("not CloudEvents");
    expect(result.notification[0]?.type).toEqual({ entity: "Account", operation: "Create" });
  });

  it("recognize-notification - reads the legacy sample with both lastUpdated formats (QBO.md §1a)", () => {
    const result = recognizeNotification(
      bytes(
        legacy([
          { name: "Customer", id: "1", operation: "Create", lastUpdated: "2015-10-05T14:42:19-0700" },
          { name: "Vendor", id: "40", operation: "Update", lastUpdated: "2016-10-05T03:09:04.000Z" },
        ]),
      ),
    );
    expect(result).toMatchObject({ kind: "notification", form: "legacy", eventCount: 2 });
  });

  it.each(["deletedId", "deletedID"])("recognize-notification - reads the merged-away id spelled %s", (key) => {
    const result = recognizeNotification(
      bytes(
        legacy([
          { name: "Customer", id: "27", operation: "Merge", lastUpdated: "2015-10-05T14:50:00-0700", [key]: "31" },
        ]),
      ),
    );
    if (result.kind !== "notification" || result.form !== "legacy") throw new Error("not legacy");
    expect(result.notification.eventNotifications[0]?.dataChangeEvent?.entities[0]).toMatchObject({
      operation: "Merge",
      deletedId: "31",
    });
  });

  it.each([
    ["qbo.invoice.void.v1", "Invoice", "Void"],
    ["qbo.invoice.voided.v1", "Invoice", "Void"],
    ["qbo.billpayment.deleted.v1", "BillPayment", "Delete"],
    ["qbo.customer.merged.v1", "Customer", "Merge"],
    ["qbo.estimate.emailed.v1", "Estimate", "Emailed"],
    ["QBO.Customer.Updated.v1", "Customer", "Update"],
  ])("recognize-notification - maps CloudEvents type %s to %s %s", (type, entity, operation) => {
    const result = recognizeNotification(bytes([cloudEvent({ type })]));
    if (result.kind !== "notification" || result.form !== "cloudevents") throw new Error(JSON.stringify(result));
    expect(result.notification[0]?.type).toEqual({ entity, operation });
  });

  it.each(["create", "UPDATE", "Delete", "merge", "VOID", "emailed"])(
    "recognize-notification - accepts legacy operation %s in any case",
    (operation) => {
      const result = recognizeNotification(
        bytes(legacy([{ name: "Invoice", id: "9", operation, lastUpdated: "2016-10-05T03:09:04.000Z" }])),
      );
      expect(result.kind).toBe("notification");
    },
  );

  it.each([
    ["an empty body", ""],
    ["whitespace", "  \n"],
    ["an empty CloudEvents array", "[]"],
    ["no realms", '{"eventNotifications":[]}'],
    ["realms without changes", '{"eventNotifications":[{"realmId":"1","dataChangeEvent":{"entities":[]}}]}'],
  ])("recognize-notification - treats %s as a notification with no events", (_name, body) => {
    expect(recognizeNotification(bytes(body))).toEqual({ kind: "empty" });
  });

  it.each([
    ["not JSON", "hello", /not JSON/],
    ["invalid UTF-8", Buffer.from([0xff, 0xfe, 0x7b]), /not JSON/],
    ["an unknown object", { events: [1] }, /unknown shape/],
    ["a JSON string", '"x"', /unknown shape/],
    ["a CloudEvent of a future version", [cloudEvent({ type: "qbo.customer.created.v2" })], /unknown event type/],
    ["a CloudEvent without its account", [cloudEvent({ intuitaccountid: undefined })], /intuitaccountid/],
    ["an array that is not CloudEvents", [{ id: 1 }], /CloudEvents/],
    [
      "an unknown legacy operation",
      legacy([{ name: "Invoice", id: "9", operation: "Archive", lastUpdated: "2016-10-05T03:09:04.000Z" }]),
      /unknown operation/,
    ],
    [
      "a bad timestamp",
      legacy([{ name: "Invoice", id: "9", operation: "Create", lastUpdated: "yesterday" }]),
      /timestamp/,
    ],
  ])("recognize-notification - does not understand %s, and says why", (_name, body, reason) => {
    const result = recognizeNotification(Buffer.isBuffer(body) ? body : bytes(body));
    expect(result.kind).toBe("unrecognized");
    if (result.kind === "unrecognized") expect(result.reason).toMatch(reason);
  });
});
