import { z } from "zod";
import type { RealmRecord } from "./realm-record.js";

/** The condition types of a company, in the order they are shown. */
export const COMPANY_CONDITION_TYPES = ["Connected", "TokensValid", "WebhooksFlowing", "CaughtUp", "Ready"] as const;
export type CompanyConditionType = (typeof COMPANY_CONDITION_TYPES)[number];

/** A condition in the Kubernetes convention (metav1.Condition), as kept in the realm's record. */
export const CompanyCondition = z.object({
  type: z.enum(COMPANY_CONDITION_TYPES),
  status: z.enum(["True", "False", "Unknown"]),
  /** CamelCase, for machines. */
  reason: z.string().regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/),
  /** For people: what it means and what to do. */
  message: z.string(),
  /** RFC 3339, whole seconds: when `status` last changed. */
  lastTransitionTime: z.string(),
});
export type CompanyCondition = z.infer<typeof CompanyCondition>;

/** A time as Kubernetes writes metav1.Time: RFC 3339 in whole seconds. */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

type Judged = Omit<CompanyCondition, "lastTransitionTime">;
type Judgement = Omit<Judged, "type">;

/**
 * The company's conditions from its record: `previous` keeps each condition's transition time
 * while its status stays. `silenceMs`: how long without a webhook counts as webhooks not flowing.
 */
export function companyConditions(
  record: RealmRecord,
  previous: readonly CompanyCondition[] | undefined,
  options: { now: number; silenceMs: number },
): CompanyCondition[] {
  const connected = connectedOf(record);
  const tokens = tokensOf(record, options.now);
  const webhooks = webhooksOf(record, options);
  const caughtUp = caughtUpOf(record);
  const notReady = [connected, tokens, caughtUp].find((c) => c.status !== "True");
  const ready: Judgement = record.paused
    ? { status: "False", reason: "Paused", message: "processing is held: events wait, none dropped, until resumed" }
    : notReady
      ? { status: "False", reason: notReady.reason, message: notReady.message }
      : { status: "True", reason: "Ready", message: "connected, tokens valid and caught up" };
  const judged: Judged[] = [
    { type: "Connected", ...connected },
    { type: "TokensValid", ...tokens },
    { type: "WebhooksFlowing", ...webhooks },
    { type: "CaughtUp", ...caughtUp },
    { type: "Ready", ...ready },
  ];
  return judged.map((condition) => {
    const before = previous?.find((p) => p.type === condition.type);
    const since = before?.status === condition.status ? before.lastTransitionTime : rfc3339(options.now);
    return { ...condition, lastTransitionTime: since };
  });
}

/** Whether two condition lists say the same (transition times aside). */
export function sameConditions(a: readonly CompanyCondition[] | undefined, b: readonly CompanyCondition[]): boolean {
  return (
    a !== undefined &&
    a.length === b.length &&
    a.every((x, i) => {
      const y = b[i];
      return (
        y !== undefined &&
        x.type === y.type &&
        x.status === y.status &&
        x.reason === y.reason &&
        x.message === y.message
      );
    })
  );
}

function connectedOf(record: RealmRecord): Judgement {
  switch (record.status) {
    case "connected":
      return { status: "True", reason: "Connected", message: "the company consented; its tokens are held" };
    case "awaiting_consent":
      return {
        status: "False",
        reason: "AwaitingConsent",
        message: "open the connect URL and consent in QuickBooks for this company",
      };
    case "disconnected":
      return { status: "False", reason: "Disconnected", message: record.statusReason ?? "disconnected" };
  }
}

function tokensOf(record: RealmRecord, now: number): Judgement {
  if (record.status === "awaiting_consent")
    return { status: "Unknown", reason: "AwaitingConsent", message: "no tokens before consent" };
  if (record.status === "disconnected") {
    return record.disconnectedBy === "quickbooks"
      ? { status: "False", reason: "TokensRefused", message: record.statusReason ?? "QuickBooks refused the tokens" }
      : { status: "False", reason: "NoTokens", message: "the tokens were removed; connect the company again" };
  }
  if (record.refreshTokenExpiresAt !== undefined && record.refreshTokenExpiresAt <= now) {
    return {
      status: "False",
      reason: "RefreshTokenExpired",
      message: "the refresh token lapsed (100 days unused): connect the company again",
    };
  }
  return { status: "True", reason: "TokensValid", message: "tokens are kept fresh ahead of expiry" };
}

function webhooksOf(record: RealmRecord, options: { now: number; silenceMs: number }): Judgement {
  if (record.status !== "connected")
    return { status: "Unknown", reason: "NotConnected", message: "webhooks are followed once connected" };
  if (record.lastWebhookAt === undefined)
    return { status: "Unknown", reason: "NoWebhookYet", message: "no webhook has arrived for this company yet" };
  if (options.now - record.lastWebhookAt <= options.silenceMs)
    return { status: "True", reason: "WebhooksArriving", message: "webhooks arrive for this company" };
  return {
    status: "False",
    reason: "Silent",
    message: `no webhook for over ${Math.round(options.silenceMs / 60_000)} min: CDC catches up meanwhile`,
  };
}

function caughtUpOf(record: RealmRecord): Judgement {
  if (record.status !== "connected")
    return { status: "Unknown", reason: "NotConnected", message: "caught up once connected" };
  if (record.lastCdcResult === "failed")
    return {
      status: "False",
      reason: "CdcFailed",
      message: "the last CDC run failed; the leader retries with backoff",
    };
  if (record.verifiedUntil === undefined) {
    return record.cdcProgress
      ? { status: "False", reason: "CatchingUp", message: "the first load is under way" }
      : { status: "False", reason: "CatchUpPending", message: "the first load has not run yet" };
  }
  return { status: "True", reason: "CaughtUp", message: "CDC confirmed the copy up to its last run" };
}
