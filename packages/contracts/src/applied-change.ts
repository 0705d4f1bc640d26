import { z } from "zod";
import { Operation } from "./operation.js";

/** The version of an entity as QuickBooks states it: what an app compares to order changes of one entity. */
export const EntityVersion = z.object({
  /** QuickBooks' optimistic-lock counter: higher is newer. */
  syncToken: z.string().min(1),
  /** `MetaData.LastUpdatedTime` as QuickBooks wrote it (one-second resolution). */
  lastUpdatedTime: z.string().min(1),
});
export type EntityVersion = z.infer<typeof EntityVersion>;

/**
 * One change applied to our copy, as published on QBO_CHANGES (`qbo.changes.<realmId>.<Entity>`)
 * and delivered to the app: the entity's full new state and its version, or neither after Delete.
 */
export const AppliedChange = z.object({
  realmId: z.string().min(1),
  entity: z.string().min(1),
  id: z.string().min(1),
  operation: Operation,
  /** QuickBooks' time of the change that led here. */
  occurredAt: z.iso.datetime(),
  appliedAt: z.iso.datetime(),
  /** The entity's version; absent after Delete (and for the merged-away entity). */
  version: EntityVersion.optional(),
  /** The entity as QuickBooks returned it; absent after Delete (and for the merged-away entity). */
  data: z.record(z.string(), z.unknown()).optional(),
});
export type AppliedChange = z.infer<typeof AppliedChange>;

/**
 * What the app's endpoint receives: an applied change and its place in the realm's delivery order.
 * `realmSequence` counts 1, 2, 3, … per realm with no holes, so a jump tells the app that a change
 * did not reach it (dead-lettered after the retry period; `qbo-webhooks dlq` shows it).
 */
export const DeliveredChange = AppliedChange.extend({
  realmSequence: z.number().int().positive(),
});
export type DeliveredChange = z.infer<typeof DeliveredChange>;
