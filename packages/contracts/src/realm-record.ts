import { z } from "zod";
import { CompanyCondition } from "./company-conditions.js";
import { ENTITY_NAMES } from "./entity-names.js";

/** `awaiting_consent`: registered (a QuickBooksCompany resource was applied) but never connected. */
export const RealmStatus = z.enum(["connected", "disconnected", "awaiting_consent"]);
export type RealmStatus = z.infer<typeof RealmStatus>;

const time = z.number().nonnegative();

/**
 * A connected company (KV `qbo-realms`, key = realmId): written when it connects, kept up to date
 * by the reconciler, read by the CLI. Times are ms since the epoch.
 */
export const RealmRecord = z.object({
  realmId: z.string().min(1),
  environment: z.enum(["production", "sandbox"]),
  /** The entity types the app follows for this company. */
  entities: z.array(z.enum(ENTITY_NAMES)).min(1),
  connectedAt: time,
  status: RealmStatus,
  /** Why the realm is disconnected, in words. */
  statusReason: z.string().optional(),
  /** Who disconnected it: QuickBooks refusing its tokens, or an operator. */
  disconnectedBy: z.enum(["quickbooks", "operator"]).optional(),
  /** Every change before this is known to be in the pipeline: the start of the last complete CDC, less a margin. */
  verifiedUntil: time.optional(),
  lastCdcAt: time.optional(),
  lastCdcResult: z.enum(["succeeded", "failed"]).optional(),
  /**
   * What the last CDC run came to: objects QuickBooks listed, events published to the pipeline
   * (of which `missed`: changes no webhook announced), objects left as they were (our copy had them
   * already), objects deferred (changed after `upTo`, the instant up to which the run took changes:
   * the next run's).
   */
  lastCdcSummary: z
    .object({
      kind: z.enum(["catch-up", "daily", "requested"]),
      found: z.number().int().nonnegative(),
      published: z.number().int().nonnegative(),
      missed: z.number().int().nonnegative(),
      left: z.number().int().nonnegative(),
      deferred: z.number().int().nonnegative(),
      upTo: time,
    })
    .optional(),
  lastDailyCdcAt: time.optional(),
  /** A CDC asked for by hand (the CLI) or by a reconnect: the leader runs it and clears this. */
  cdcRequestedAt: time.optional(),
  /** Progress of the CDC under way: objects found so far, and of how many entity types done. */
  cdcProgress: z.object({ found: z.number(), typesDone: z.number(), types: z.number() }).optional(),
  lastWebhookAt: time.optional(),
  /** When a full listing (a first load, or a gap beyond CDC's 30 days) last completed. */
  lastFullSyncAt: time.optional(),
  /** Changes CDC runs found that no webhook had announced, summed over every run. */
  missedTotal: z.number().int().nonnegative().optional(),
  /** Events of this realm in the dead-letter stream, as the leader last counted them. */
  deadLetters: z.number().int().nonnegative().optional(),
  /** Processing held: the realm's events wait in the stream (none dropped) until it is resumed. */
  paused: z.boolean().optional(),
  /** The company's state at a glance, kept by the leader (`company-conditions`). */
  conditions: z.array(CompanyCondition).optional(),
  accessTokenExpiresAt: time.optional(),
  refreshTokenExpiresAt: time.optional(),
});
export type RealmRecord = z.infer<typeof RealmRecord>;
