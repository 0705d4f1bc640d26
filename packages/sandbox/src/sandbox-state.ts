import { ENTITY_NAMES } from "@qbo-webhooks/contracts";
import { z } from "zod";

const Entity = z.enum(ENTITY_NAMES);

/** One company's books as saved: what CDC and the API answer from, and where its ids and times stand. */
export const CompanyState = z.object({
  realmId: z.string(),
  name: z.string(),
  lastChangeAt: z.number(),
  nextIds: z.partialRecord(Entity, z.number().int().positive()),
  entities: z.array(
    z.object({
      entity: Entity,
      updatedAt: z.number(),
      data: z.looseObject({
        Id: z.string(),
        SyncToken: z.string(),
        domain: z.literal("QBO"),
        MetaData: z.object({ CreateTime: z.string(), LastUpdatedTime: z.string() }),
      }),
    }),
  ),
  tombstones: z.array(z.object({ entity: Entity, id: z.string(), deletedAt: z.number() })),
});
export type CompanyState = z.infer<typeof CompanyState>;

/** The grants apps hold, with their tokens: an app's stored refresh token keeps working after a restart. */
export const OAuthState = z.object({
  grants: z.array(
    z.object({
      appId: z.string(),
      realmId: z.string(),
      hardExpiresAt: z.number(),
      revoked: z.boolean(),
      refreshTokens: z.array(z.object({ token: z.string(), expiresAt: z.number(), replaced: z.boolean() })),
      accessTokens: z.array(z.object({ token: z.string(), expiresAt: z.number() })),
    }),
  ),
});
export type OAuthState = z.infer<typeof OAuthState>;

/**
 * What a sandbox keeps across restarts (SANDBOX_STATE_FILE): companies, the apps' connections and
 * OAuth grants. Not kept: webhooks not yet delivered (as when QuickBooks misses them; CDC finds
 * those changes), faults, and the API's counters.
 */
export const SandboxState = z.object({
  version: z.literal(1),
  /** Sandbox time when saved: a restored clock never runs before it. */
  savedAt: z.number(),
  nextRealm: z.string().regex(/^\d+$/),
  companies: z.array(CompanyState),
  oauth: OAuthState,
  /** Per app: its connected companies and when each connected (only later changes are announced). */
  connections: z.record(z.string(), z.record(z.string(), z.number())),
});
export type SandboxState = z.infer<typeof SandboxState>;
