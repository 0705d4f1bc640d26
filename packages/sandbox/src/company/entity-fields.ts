import type { EntityName } from "@qbo-webhooks/contracts";

/** A deterministic source of variety, so a seeded sandbox produces the same data every run. */
export type Random = () => number;

/** mulberry32: a small, well-known seeded PRNG. */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const FIRST = ["Amy", "Bill", "Cool", "Dukes", "Geeta", "Jeff", "Kookies", "Mark", "Rondonuwu", "Sonnenschein"];
const LAST = [
  "Bird Sanctuary",
  "Bakery",
  "Cars",
  "Basketball",
  "Kalapatapu",
  "Auto",
  "by Kathy",
  "Cho",
  "Fruit",
  "Family",
];
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
const money = (random: Random) => Math.round(random() * 500_000) / 100;

/** Realistic fields for a new entity of `entity`, shaped as the QuickBooks API returns them. */
export function sampleFields(entity: EntityName, id: string, random: Random): Record<string, unknown> {
  const name = `${pick(random, FIRST)}'s ${pick(random, LAST)} ${id}`;
  const amount = money(random);
  switch (entity) {
    case "Customer":
    case "Vendor":
      return {
        DisplayName: name,
        CompanyName: name,
        PrimaryEmailAddr: { Address: `contact${id}@example.com` },
        Balance: amount,
        Active: true,
      };
    case "Employee":
      return { DisplayName: name, GivenName: pick(random, FIRST), FamilyName: `Employee${id}`, Active: true };
    case "Item":
      return { Name: name, Type: "Service", UnitPrice: amount, IncomeAccountRef: { value: "1" }, Active: true };
    case "Account":
      return {
        Name: name,
        AccountType: "Expense",
        AccountSubType: "OfficeGeneralAdministrativeExpenses",
        Active: true,
      };
    case "Department":
    case "Class":
    case "Term":
    case "PaymentMethod":
    case "TaxAgency":
    case "JournalCode":
      return { Name: name, Active: true };
    case "Invoice":
    case "Estimate":
    case "SalesReceipt":
    case "CreditMemo":
    case "RefundReceipt":
      return {
        DocNumber: String(1000 + Number(id)),
        TxnDate: "2026-11-01",
        CustomerRef: { value: "1" },
        Line: [{ Amount: amount, DetailType: "SalesItemLineDetail", SalesItemLineDetail: { ItemRef: { value: "1" } } }],
        TotalAmt: amount,
        Balance: amount,
      };
    case "Bill":
    case "Purchase":
    case "PurchaseOrder":
    case "VendorCredit":
      return {
        TxnDate: "2026-11-01",
        VendorRef: { value: "1" },
        Line: [{ Amount: amount, DetailType: "AccountBasedExpenseLineDetail" }],
        TotalAmt: amount,
      };
    case "JournalEntry":
      return {
        TxnDate: "2026-11-01",
        Line: [
          { Amount: amount, DetailType: "JournalEntryLineDetail", JournalEntryLineDetail: { PostingType: "Debit" } },
          { Amount: amount, DetailType: "JournalEntryLineDetail", JournalEntryLineDetail: { PostingType: "Credit" } },
        ],
      };
    default:
      return { TxnDate: "2026-11-01", TotalAmt: amount };
  }
}
