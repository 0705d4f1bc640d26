import { z } from "zod";
import { type Operation, operationFromWord } from "./operation.js";
import { QboTimestamp } from "./qbo-timestamp.js";

const LegacyOperation = z.string().transform((word, ctx): Operation => {
  const operation = operationFromWord(word);
  if (operation) return operation;
  ctx.addIssue({ code: "custom", message: `unknown operation "${word}"` });
  return z.NEVER;
});

/**
 * One changed entity of a legacy notification. `deletedId` (on Merge: the id merged away) is spelled
 * `deletedID` in Intuit's docs, so both spellings are read (QBO.md §1a).
 */
export const LegacyEntityChange = z
  .object({
    name: z.string().regex(/^[A-Za-z]+$/, "entity name must be letters only"),
    id: z.string().min(1),
    operation: LegacyOperation,
    lastUpdated: QboTimestamp,
    deletedId: z.string().min(1).optional(),
    deletedID: z.string().min(1).optional(),
  })
  .transform(({ deletedID, deletedId, ...change }) => ({ ...change, deletedId: deletedId ?? deletedID }));
export type LegacyEntityChange = z.infer<typeof LegacyEntityChange>;

/** The original webhook body: `{eventNotifications:[{realmId, dataChangeEvent:{entities}}]}` (QBO.md §1a). */
export const LegacyNotification = z.object({
  eventNotifications: z.array(
    z.object({
      realmId: z.string().min(1),
      // Absent on endpoint checks that carry no change.
      dataChangeEvent: z.object({ entities: z.array(LegacyEntityChange) }).optional(),
    }),
  ),
});
export type LegacyNotification = z.infer<typeof LegacyNotification>;
