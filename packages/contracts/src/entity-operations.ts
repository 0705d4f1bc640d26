import type { EntityName } from "./entity-names.js";
import type { Operation } from "./operation.js";

const CUD: readonly Operation[] = ["Create", "Update", "Delete"];
const CU: readonly Operation[] = ["Create", "Update"];

const MERGE = new Set<EntityName>(["Account", "Customer", "Vendor", "Employee", "Item", "Department", "PaymentMethod"]);
const VOID = new Set<EntityName>([
  "BillPayment",
  "CreditMemo",
  "Invoice",
  "Payment",
  "Purchase",
  "RefundReceipt",
  "SalesReceipt",
  "Transfer",
]);
const EMAILED = new Set<EntityName>([
  "Invoice",
  "Estimate",
  "CreditMemo",
  "SalesReceipt",
  "RefundReceipt",
  "Payment",
  "PurchaseOrder",
]);
const CREATE_UPDATE_ONLY = new Set<EntityName>([
  "Budget",
  "JournalCode",
  "TaxAgency",
  "Term",
  "Department",
  "PaymentMethod",
]);

/** The webhook operations QuickBooks emits for an entity type (QBO.md §1c). */
export function operationsOf(entity: EntityName): readonly Operation[] {
  if (entity === "Preferences") return ["Update"];
  const base = CREATE_UPDATE_ONLY.has(entity) ? CU : CUD;
  return [
    ...base,
    ...(MERGE.has(entity) ? (["Merge"] as const) : []),
    ...(VOID.has(entity) ? (["Void"] as const) : []),
    ...(EMAILED.has(entity) ? (["Emailed"] as const) : []),
  ];
}

/** Entities Change Data Capture does not return (QBO.md §4); read them with queries instead. */
export const CDC_UNSUPPORTED_ENTITIES: ReadonlySet<string> = new Set([
  "JournalCode",
  "TimeActivity",
  "TaxAgency",
  "TaxCode",
  "TaxRate",
]);
