import { z } from "zod";

/** What happened to an entity, in the legacy payload's spelling (QBO.md §1c). */
export const Operation = z.enum(["Create", "Update", "Delete", "Merge", "Void", "Emailed"]);
export type Operation = z.infer<typeof Operation>;

// Legacy operations arrive in any case; CloudEvents use past-tense verbs, and Void is spelled
// both `void` and `voided` (QBO.md §0).
const byWord = new Map<string, Operation>([
  ["create", "Create"],
  ["created", "Create"],
  ["update", "Update"],
  ["updated", "Update"],
  ["delete", "Delete"],
  ["deleted", "Delete"],
  ["merge", "Merge"],
  ["merged", "Merge"],
  ["void", "Void"],
  ["voided", "Void"],
  ["emailed", "Emailed"],
]);

/** The operation named by a legacy operation or a CloudEvents verb in any case, or undefined. */
export function operationFromWord(word: string): Operation | undefined {
  return byWord.get(word.toLowerCase());
}
