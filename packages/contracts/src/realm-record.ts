import { z } from "zod";
import { ENTITY_NAMES } from "./entity-names.js";

export const RealmStatus = z.enum(["connected", "disconnected"]);
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
  /** Every change before this is known to be in the pipeline: the start of the last complete CDC, less a margin. */
  verifiedUntil: time.optional(),
  lastCdcAt: time.optional(),
  lastCdcResult: z.enum(["succeeded", "failed"]).optional(),
  lastDailyCdcAt: time.optional(),
  /** A CDC asked for by hand (the CLI) or by a reconnect: the leader runs it and clears this. */
  cdcRequestedAt: time.optional(),
  /** Progress of the CDC under way: objects found so far, and of how many entity types done. */
  cdcProgress: z.object({ found: z.number(), typesDone: z.number(), types: z.number() }).optional(),
  lastWebhookAt: time.optional(),
  accessTokenExpiresAt: time.optional(),
  refreshTokenExpiresAt: time.optional(),
});
export type RealmRecord = z.infer<typeof RealmRecord>;
