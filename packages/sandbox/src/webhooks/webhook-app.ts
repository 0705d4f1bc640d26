import { ENTITY_NAMES, Operation } from "@qbo-webhooks/contracts";
import { z } from "zod";

/**
 * One app's webhook settings, as configured in Intuit's developer portal (QBO.md §3): endpoint,
 * verifier token, environment, subscribed entities and operations, payload form, and which of
 * QuickBooks' two delivery policies to follow.
 */
export const WebhookAppSettings = z.object({
  appId: z.string().min(1),
  /** The OAuth client of the app; `clientSecret` authenticates token requests. */
  clientId: z.string().min(1),
  clientSecret: z.string().min(1),
  redirectUris: z.array(z.url()).default([]),
  /** Where notifications are POSTed; none means the app has no webhook endpoint yet. */
  endpointUrl: z.url().optional(),
  verifierToken: z.string().min(1),
  environment: z.enum(["sandbox", "production"]).default("sandbox"),
  payloadForm: z.enum(["cloudevents", "legacy"]).default("cloudevents"),
  policy: z.enum(["current", "legacy"]).default("current"),
  /** Production aggregates for 1, 3 or 5 minutes; the sandbox environment sends in near real time. */
  aggregationMinutes: z.union([z.literal(1), z.literal(3), z.literal(5)]).default(1),
  /** Entity → operations subscribed; absent means every entity and operation. */
  subscriptions: z.partialRecord(z.enum(ENTITY_NAMES), z.array(Operation)).optional(),
  /** QuickBooks counts a delivery as failed unless 200 arrives within 3 s (real time). */
  deliveryTimeoutMs: z.number().int().min(1).default(3000),
});
export type WebhookAppSettings = z.infer<typeof WebhookAppSettings>;
export type WebhookAppInput = z.input<typeof WebhookAppSettings>;
