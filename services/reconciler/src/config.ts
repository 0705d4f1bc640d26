import { hostname } from "node:os";
import { ENTITY_NAMES, type EntityName, entityNameFromAnyCase } from "@qbo-webhooks/contracts";
import {
  checkQuickBooksEnv,
  type QuickBooksSettings,
  quickbooksEnvFields,
  quickbooksSettings,
} from "@qbo-webhooks/quickbooks";
import {
  booleanFlag,
  type CommonSettings,
  checkNatsAuthEnv,
  commaList,
  commonEnv,
  commonSettings,
  integer,
  type ListenAddress,
  loadEnv,
  publicHttpEnv,
} from "@qbo-webhooks/service-kit";
import { z } from "zod";
import type { OperatorSettings } from "./operator/company-operator.js";

const MINUTE = 60_000;

export const ReconcilerEnv = z.object({
  ...commonEnv(9093),
  ...publicHttpEnv(8083),
  ...quickbooksEnvFields,
  /**
   * The bearer token operators present to `/connect` (on the ops port); without it, connecting is off.
   * From a Secret; at least 32 characters (openssl rand -hex 32).
   */
  OPERATOR_TOKEN: z.string().min(32, "must be at least 32 characters (openssl rand -hex 32)").optional(),
  /** Where Intuit sends the user back after consent: this service's `/oauth/callback`, as registered with Intuit. */
  QBO_REDIRECT_URI: z.url("must be the URL of this service's /oauth/callback, as registered with Intuit").optional(),
  /** The entity types a newly connected company is followed for (default: every type webhooks announce). */
  QBO_ENTITIES: z
    .string()
    .optional()
    .transform((text, ctx) => {
      if (text === undefined) return [...ENTITY_NAMES];
      const names = commaList(text).map((word) => entityNameFromAnyCase(word) ?? word);
      const unknown = names.filter((name) => !(ENTITY_NAMES as readonly string[]).includes(name));
      if (unknown.length) ctx.addIssue({ code: "custom", message: `unknown entity types: ${unknown.join(", ")}` });
      return names as EntityName[];
    }),
  /**
   * `nats`: a lock in KV `qbo-leases`; `kubernetes`: a coordination.k8s.io Lease, in POD_NAMESPACE
   * (the chart sets both). Never guessed from the environment: a pod that happens to see
   * KUBERNETES_SERVICE_HOST may have no RBAC for Leases.
   */
  LEADER_ELECTION: z.enum(["kubernetes", "nats"], { error: 'must be "kubernetes" or "nats"' }).default("nats"),
  LEADER_LEASE_NAME: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a Kubernetes name")
    .default("qbo-webhooks-reconciler"),
  /** The pod's namespace (the downward API's metadata.namespace): where the Lease lives. */
  POD_NAMESPACE: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a Kubernetes namespace")
    .optional(),
  /**
   * Manage QuickBooksCompany resources (the chart's CRD) in POD_NAMESPACE: the chart sets it, with
   * the RBAC it needs. Off: the same loops run on the KV registry alone.
   */
  COMPANY_RESOURCES: booleanFlag(false),
  /** Where operators reach this service's /connect, shown in a company's status while consent is awaited. */
  CONNECT_URL_BASE: z.url("must be a URL such as http://localhost:9093").optional(),
  /** Every company resource is reconciled again this often, whatever the watch said. */
  COMPANY_RESYNC_MS: integer(1000, 24 * 60 * MINUTE, 5 * MINUTE),
  /** A company resource's status is written at most this often, unless a condition's status changes. */
  STATUS_MIN_INTERVAL_MS: integer(0, 60 * MINUTE, 10_000),
  /** Status writes per second to the Kubernetes API, across all company resources. */
  STATUS_WRITES_PER_SECOND: integer(1, 1000, 20),
  /** A leader that has not renewed for this long is replaced. */
  LEADER_LEASE_MS: integer(3000, 300_000, 15_000),
  /** The leader stops acting when it could not renew for this long: before anyone may take over. */
  LEADER_RENEW_DEADLINE_MS: integer(2000, 300_000, 10_000),
  LEADER_RETRY_MS: integer(200, 60_000, 2000),
  /** How often the leader's control loops run. */
  LOOP_INTERVAL_MS: integer(100, 600_000, 5000),
  /** Refresh access tokens this long before they lapse. */
  TOKEN_REFRESH_AHEAD_MS: integer(MINUTE, 55 * MINUTE, 15 * MINUTE),
  /** A realm without webhooks for this long gets a CDC catch-up (QuickBooks may have stopped sending). */
  SILENCE_MS: integer(MINUTE, 24 * 60 * MINUTE, 15 * MINUTE),
  /** A busy realm is caught up after ten of its usual gaps without webhooks, but never before this. */
  SILENCE_MIN_MS: integer(10_000, 24 * 60 * MINUTE, 2 * MINUTE),
  /** Changes CDC finds that are older than this and no webhook announced count as missed. */
  MISSED_GRACE_MS: integer(0, 24 * 60 * MINUTE, 10 * MINUTE),
  DAILY_CDC: booleanFlag(true),
  /** CDC runs at once across realms (each realm's calls stay within its rate limit). */
  CDC_CONCURRENCY: integer(1, 100, 4),
  RECONCILER_ID: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, "letters, digits, '.', '-' and '_' only")
    .optional(),
});

/** Where leadership is recorded (a KV key, or a Lease the chart names in the pod's namespace), and its timing. */
export type LeaderSettings = {
  readonly leaseMs: number;
  readonly renewDeadlineMs: number;
  readonly retryMs: number;
} & (
  | { readonly mode: "nats" }
  | { readonly mode: "kubernetes"; readonly leaseName: string; readonly namespace: string }
);

export interface ReconcilerConfig extends QuickBooksSettings, CommonSettings {
  /** The public port: `/oauth/callback`, where Intuit sends the browser back. */
  readonly http: ListenAddress;
  /** `/healthz`, `/readyz`, `/metrics` and the operators' `/connect`. */
  readonly ops: ListenAddress;
  readonly operatorToken: string | undefined;
  readonly redirectUri: string;
  readonly entities: readonly EntityName[];
  readonly leader: LeaderSettings;
  /** QuickBooksCompany resources managed, where; undefined: off. */
  readonly companyResources: Omit<OperatorSettings, "environment" | "entities" | "silenceMs"> | undefined;
  readonly loopIntervalMs: number;
  readonly tokenRefreshAheadMs: number;
  readonly silenceMs: number;
  readonly silenceMinMs: number;
  readonly missedGraceMs: number;
  readonly dailyCdc: boolean;
  readonly cdcConcurrency: number;
  readonly reconcilerId: string;
}

/** @throws {ConfigError} naming every bad variable; secrets are never echoed. */
export function loadConfig(env: NodeJS.ProcessEnv): ReconcilerConfig {
  const c = loadEnv(
    ReconcilerEnv.refine((v) => v.LEADER_RENEW_DEADLINE_MS < v.LEADER_LEASE_MS, {
      path: ["LEADER_RENEW_DEADLINE_MS"],
      message: "must be shorter than LEADER_LEASE_MS, so a leader stops before it can be replaced",
    })
      .refine((v) => v.SILENCE_MIN_MS <= v.SILENCE_MS, {
        path: ["SILENCE_MIN_MS"],
        message: "must not be longer than SILENCE_MS",
      })
      .refine((v) => v.LEADER_ELECTION !== "kubernetes" || v.POD_NAMESPACE !== undefined, {
        path: ["POD_NAMESPACE"],
        message: "is required with LEADER_ELECTION=kubernetes: set it from the pod (fieldRef metadata.namespace)",
      })
      .refine((v) => !v.COMPANY_RESOURCES || v.POD_NAMESPACE !== undefined, {
        path: ["POD_NAMESPACE"],
        message: "is required with COMPANY_RESOURCES=true: set it from the pod (fieldRef metadata.namespace)",
      })
      .superRefine(checkQuickBooksEnv)
      .superRefine(checkNatsAuthEnv),
    env,
  );
  return {
    ...commonSettings(c),
    ...quickbooksSettings(c),
    http: { port: c.HTTP_PORT, host: c.HTTP_HOST, variable: "HTTP_PORT" },
    operatorToken: c.OPERATOR_TOKEN,
    redirectUri: c.QBO_REDIRECT_URI ?? `http://127.0.0.1:${c.HTTP_PORT}/oauth/callback`,
    entities: c.QBO_ENTITIES,
    leader: {
      // POD_NAMESPACE is there with kubernetes (refined above).
      ...(c.LEADER_ELECTION === "kubernetes" && c.POD_NAMESPACE
        ? { mode: "kubernetes" as const, leaseName: c.LEADER_LEASE_NAME, namespace: c.POD_NAMESPACE }
        : { mode: "nats" as const }),
      leaseMs: c.LEADER_LEASE_MS,
      renewDeadlineMs: c.LEADER_RENEW_DEADLINE_MS,
      retryMs: c.LEADER_RETRY_MS,
    },
    companyResources:
      c.COMPANY_RESOURCES && c.POD_NAMESPACE
        ? {
            namespace: c.POD_NAMESPACE,
            connectUrlBase: c.CONNECT_URL_BASE ?? `http://127.0.0.1:${c.OPS_PORT}`,
            resyncMs: c.COMPANY_RESYNC_MS,
            statusMinIntervalMs: c.STATUS_MIN_INTERVAL_MS,
            statusWritesPerSecond: c.STATUS_WRITES_PER_SECOND,
          }
        : undefined,
    loopIntervalMs: c.LOOP_INTERVAL_MS,
    tokenRefreshAheadMs: c.TOKEN_REFRESH_AHEAD_MS,
    silenceMs: c.SILENCE_MS,
    silenceMinMs: c.SILENCE_MIN_MS,
    missedGraceMs: c.MISSED_GRACE_MS,
    dailyCdc: c.DAILY_CDC,
    cdcConcurrency: c.CDC_CONCURRENCY,
    reconcilerId: c.RECONCILER_ID ?? `${hostname().replace(/[^A-Za-z0-9_.-]/g, "-")}-${process.pid}`,
  };
}
