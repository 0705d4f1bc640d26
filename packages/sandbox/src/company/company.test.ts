import { describe, expect, it } from "vitest";
import { SandboxClock } from "../clock.js";
import { SandboxError } from "../sandbox-error.js";
import { type ChangeRecord, Company } from "./company.js";
import { seededRandom } from "./entity-fields.js";

function company() {
  const clock = new SandboxClock({ start: Date.parse("2026-11-01T00:00:00Z"), speed: 0 });
  const changes: ChangeRecord[] = [];
  return { clock, changes, company: new Company("123", "Test Co", clock, seededRandom(7), (c) => changes.push(c)) };
}

describe("company", () => {
  it("company - create gives Id, SyncToken 0 and MetaData times with an offset (QBO.md §4, §5)", () => {
    const { company: c } = company();
    const customer = c.create("Customer");
    expect(customer).toMatchObject({ Id: "1", SyncToken: "0", domain: "QBO" });
    expect(customer.MetaData.CreateTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-08:00$/);
    expect(customer.DisplayName).toEqual(expect.any(String));
  });

  it("company - ids are per entity type, as in QuickBooks: a Customer 1 and an Invoice 1 both exist", () => {
    const { company: c } = company();
    expect([c.create("Customer").Id, c.create("Invoice").Id, c.create("Customer").Id]).toEqual(["1", "1", "2"]);
    expect(Object.keys(c.snapshot())).toEqual(["Customer", "Invoice"]);
  });

  it("company - update bumps SyncToken and LastUpdatedTime and emits Update", async () => {
    const { company: c, clock, changes } = company();
    const created = c.create("Invoice");
    await clock.advance(5000);
    const updated = c.update("Invoice", created.Id, { PrivateNote: "x" });
    expect(updated.SyncToken).toBe("1");
    expect(updated.MetaData.LastUpdatedTime > created.MetaData.LastUpdatedTime).toBe(true);
    expect(changes.map((ch) => ch.operation)).toEqual(["Create", "Update"]);
  });

  it("company - every change of a company is strictly later than the one before, even within a millisecond", () => {
    const { company: c, changes } = company();
    for (let i = 0; i < 5; i++) c.create("Customer");
    const times = changes.map((ch) => ch.at);
    expect(new Set(times).size).toBe(5);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
  });

  it("company - merge deletes the merged-away entity and names it in the Merge change (QBO.md §1a, §1c)", () => {
    const { company: c, changes } = company();
    const kept = c.create("Customer");
    const gone = c.create("Customer");
    c.merge("Customer", gone.Id, kept.Id);
    expect(c.get("Customer", gone.Id)).toBeUndefined();
    expect(changes.at(-1)).toMatchObject({ operation: "Merge", id: kept.Id, deletedId: gone.Id });
    expect(c.changedSince("Customer", 0).deleted.map((t) => t.id)).toEqual([gone.Id]);
  });

  it("company - void keeps the transaction with zero amounts; delete remembers a tombstone for CDC (QBO.md §4)", () => {
    const { company: c } = company();
    const invoice = c.create("Invoice");
    expect(c.void("Invoice", invoice.Id)).toMatchObject({ TotalAmt: 0, Balance: 0 });
    c.delete("Invoice", invoice.Id);
    expect(c.get("Invoice", invoice.Id)).toBeUndefined();
    expect(c.changedSince("Invoice", 0).deleted).toHaveLength(1);
  });

  it.each([
    ["Void", "Customer"],
    ["Merge", "Invoice"],
    ["Emailed", "Bill"],
    ["Delete", "Term"],
  ] as const)("company - refuses %s on %s, which QuickBooks does not do (QBO.md §1c)", (operation, entity) => {
    const { company: c } = company();
    const run = () => {
      if (operation === "Void") c.void(entity, "1");
      if (operation === "Merge") c.merge(entity, "1", "2");
      if (operation === "Emailed") c.email(entity, "1");
      if (operation === "Delete") c.delete(entity, "1");
    };
    expect(run).toThrow(SandboxError);
    expect(run).toThrow(/does not/);
  });

  it("company - snapshot is the ground truth of live entities", () => {
    const { company: c } = company();
    const a = c.create("Vendor");
    const b = c.create("Vendor");
    c.delete("Vendor", a.Id);
    expect(Object.keys(c.snapshot().Vendor ?? {})).toEqual([b.Id]);
  });
});
