import { describe, expect, it } from "vitest";
import { companyConditions, rfc3339, sameConditions } from "./company-conditions.js";
import type { RealmRecord } from "./realm-record.js";

const NOW = Date.parse("2026-12-01T10:00:00Z");
const options = { now: NOW, silenceMs: 15 * 60_000 };
const connected: RealmRecord = {
  realmId: "1",
  environment: "sandbox",
  entities: ["Customer"],
  connectedAt: NOW - 3600_000,
  status: "connected",
  verifiedUntil: NOW - 60_000,
  lastCdcResult: "succeeded",
  lastWebhookAt: NOW - 60_000,
  refreshTokenExpiresAt: NOW + 86_400_000,
};
const statuses = (record: RealmRecord) =>
  Object.fromEntries(companyConditions(record, undefined, options).map((c) => [c.type, `${c.status} ${c.reason}`]));

describe("company conditions", () => {
  it("conditions - a healthy company is Ready; each problem shows on its own condition and on Ready", () => {
    expect(statuses(connected)).toEqual({
      Connected: "True Connected",
      TokensValid: "True TokensValid",
      WebhooksFlowing: "True WebhooksArriving",
      CaughtUp: "True CaughtUp",
      Ready: "True Ready",
    });
    expect(statuses({ ...connected, status: "awaiting_consent", verifiedUntil: undefined })).toMatchObject({
      Connected: "False AwaitingConsent",
      TokensValid: "Unknown AwaitingConsent",
      Ready: "False AwaitingConsent",
    });
    expect(
      statuses({ ...connected, status: "disconnected", disconnectedBy: "quickbooks", statusReason: "refused" }),
    ).toMatchObject({
      Connected: "False Disconnected",
      TokensValid: "False TokensRefused",
      Ready: "False Disconnected",
    });
    expect(statuses({ ...connected, refreshTokenExpiresAt: NOW - 1 })).toMatchObject({
      TokensValid: "False RefreshTokenExpired",
      Ready: "False RefreshTokenExpired",
    });
    expect(statuses({ ...connected, lastCdcResult: "failed" })).toMatchObject({
      CaughtUp: "False CdcFailed",
      Ready: "False CdcFailed",
    });
    expect(
      statuses({ ...connected, verifiedUntil: undefined, cdcProgress: { found: 1, typesDone: 0, types: 1 } }),
    ).toMatchObject({
      CaughtUp: "False CatchingUp",
    });
    // A quiet company is still Ready: CDC covers what webhooks would have said.
    expect(statuses({ ...connected, lastWebhookAt: NOW - 3600_000 })).toMatchObject({
      WebhooksFlowing: "False Silent",
      Ready: "True Ready",
    });
    expect(statuses({ ...connected, paused: true })).toMatchObject({ Ready: "False Paused" });
  });

  it("conditions - a condition's transition time stays while its status stays, and moves when it changes", () => {
    const first = companyConditions(connected, undefined, { ...options, now: NOW - 60_000 });
    const again = companyConditions(connected, first, options);
    expect(again).toEqual(first);
    expect(sameConditions(first, again)).toBe(true);
    const paused = companyConditions({ ...connected, paused: true }, first, options);
    expect(paused.find((c) => c.type === "Ready")?.lastTransitionTime).toBe(rfc3339(NOW));
    expect(paused.find((c) => c.type === "Connected")?.lastTransitionTime).toBe(rfc3339(NOW - 60_000));
    expect(sameConditions(first, paused)).toBe(false);
    expect(rfc3339(NOW + 123)).toBe("2026-12-01T10:00:00Z");
  });
});
