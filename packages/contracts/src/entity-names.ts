/**
 * Entity types QuickBooks sends webhooks for (QBO.md §1c). CloudEvents carry the name in lower case
 * (`qbo.billpayment.created.v1`), so this list restores the API's spelling.
 */
export const ENTITY_NAMES = [
  "Account",
  "Bill",
  "BillPayment",
  "Budget",
  "ChangeOrder",
  "Class",
  "CompanyCurrency",
  "CreditMemo",
  "Currency",
  "Customer",
  "Department",
  "Deposit",
  "Employee",
  "Estimate",
  "Invoice",
  "Item",
  "JournalCode",
  "JournalEntry",
  "Payment",
  "PaymentMethod",
  "Preferences",
  "Purchase",
  "PurchaseOrder",
  "RefundReceipt",
  "SalesReceipt",
  "TaxAgency",
  "Term",
  "TimeActivity",
  "Transfer",
  "Vendor",
  "VendorCredit",
] as const;

export type EntityName = (typeof ENTITY_NAMES)[number];

const byLowerCase = new Map<string, EntityName>(ENTITY_NAMES.map((name) => [name.toLowerCase(), name]));

/** The API spelling of an entity name given in any case, or undefined when QuickBooks has no such webhook entity. */
export function entityNameFromAnyCase(name: string): EntityName | undefined {
  return byLowerCase.get(name.toLowerCase());
}
