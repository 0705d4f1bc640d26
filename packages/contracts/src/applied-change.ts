import { z } from "zod";
import { Operation } from "./operation.js";

/**
 * One change applied to our copy, as published on QBO_CHANGES (`qbo.changes.<realmId>.<Entity>`)
 * and delivered to the app: the entity's full new state, or none after Delete.
 */
export const AppliedChange = z.object({
  realmId: z.string().min(1),
  entity: z.string().min(1),
  id: z.string().min(1),
  operation: Operation,
  /** QuickBooks' time of the change that led here. */
  occurredAt: z.iso.datetime(),
  appliedAt: z.iso.datetime(),
  /** The entity as QuickBooks returned it; absent after Delete (and for the merged-away entity). */
  data: z.record(z.string(), z.unknown()).optional(),
});
export type AppliedChange = z.infer<typeof AppliedChange>;
