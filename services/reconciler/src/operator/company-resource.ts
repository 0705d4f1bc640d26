import { CompanyCondition, ENTITY_NAMES, type EntityName, type RealmRecord, rfc3339 } from "@qbo-webhooks/contracts";
import { z } from "zod";

/** Where QuickBooksCompany lives (the chart's crds/quickbookscompanies.yaml). */
export const COMPANY_API = {
  group: "qbo-webhooks.io",
  version: "v1alpha1",
  plural: "quickbookscompanies",
  kind: "QuickBooksCompany",
} as const;
export const COMPANY_API_VERSION = `${COMPANY_API.group}/${COMPANY_API.version}`;

/** Held on every company resource until its tokens are revoked and its record (and data, if asked) removed. */
export const COMPANY_FINALIZER = "qbo-webhooks.io/revoke-tokens";

export const CompanySpec = z.object({
  realmId: z.string().regex(/^[0-9]{1,32}$/),
  environment: z.enum(["production", "sandbox"]).optional(),
  entities: z.array(z.enum(ENTITY_NAMES)).optional(),
  paused: z.boolean().default(false),
  deletionPolicy: z.enum(["Retain", "Delete"]).default("Retain"),
});
export type CompanySpec = z.infer<typeof CompanySpec>;

const time = z.string().optional();

export const CompanyStatus = z.object({
  observedGeneration: z.number().int().optional(),
  conditions: z.array(CompanyCondition.extend({ observedGeneration: z.number().int().optional() })).optional(),
  connectUrl: z.string().optional(),
  lastWebhookTime: time,
  lastCdcTime: time,
  lastCdcResult: z.string().optional(),
  lastFullSyncTime: time,
  verifiedUntil: time,
  missedChanges: z.number().int().optional(),
  deadLetters: z.number().int().optional(),
});
export type CompanyStatus = z.infer<typeof CompanyStatus>;

/** A QuickBooksCompany as the API server answers it (fields we do not use are kept as they are). */
export const CompanyResource = z.looseObject({
  apiVersion: z.string(),
  kind: z.string(),
  metadata: z.looseObject({
    name: z.string(),
    namespace: z.string(),
    uid: z.string(),
    generation: z.number().int(),
    resourceVersion: z.string(),
    creationTimestamp: z.string().optional(),
    deletionTimestamp: z.string().optional(),
    finalizers: z.array(z.string()).optional(),
  }),
  spec: CompanySpec,
  status: CompanyStatus.optional(),
});
export type CompanyResource = z.infer<typeof CompanyResource>;

/** The entity types a resource asks for: its own list, or the reconciler's default when it names none. */
export function wantedEntities(spec: CompanySpec, defaults: readonly EntityName[]): EntityName[] {
  return spec.entities && spec.entities.length > 0 ? [...spec.entities] : [...defaults];
}

/**
 * The status a resource should show for its company's record: `conditions` (judged from the record
 * by `company-conditions`, the rule the leader's loops also keep in the record) stamped with the
 * generation observed, and the record's times.
 */
export function companyStatus(
  record: RealmRecord,
  conditions: readonly CompanyCondition[],
  generation: number,
  connectUrl: string,
): CompanyStatus {
  const times: Partial<CompanyStatus> = {};
  if (record.lastWebhookAt !== undefined) times.lastWebhookTime = rfc3339(record.lastWebhookAt);
  if (record.lastCdcAt !== undefined) times.lastCdcTime = rfc3339(record.lastCdcAt);
  if (record.lastCdcResult !== undefined) times.lastCdcResult = record.lastCdcResult;
  if (record.lastFullSyncAt !== undefined) times.lastFullSyncTime = rfc3339(record.lastFullSyncAt);
  if (record.verifiedUntil !== undefined) times.verifiedUntil = rfc3339(record.verifiedUntil);
  return {
    observedGeneration: generation,
    conditions: conditions.map((c) => ({ ...c, observedGeneration: generation })),
    ...(record.status === "connected" ? {} : { connectUrl }),
    ...times,
    missedChanges: record.missedTotal ?? 0,
    deadLetters: record.deadLetters ?? 0,
  };
}
