const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

export type DeliveryPolicy = "current" | "legacy";

/**
 * Today's policy: one ordered queue per app; a failed delivery is retried after 10 s, 20 s, 30 s,
 * 5 min, 20 min, 2 h, 4 h, 6 h, then every 6 h, and nothing newer is sent meanwhile (QBO.md §3).
 */
export const CURRENT_RETRY_DELAYS_MS = [
  10 * SECOND,
  20 * SECOND,
  30 * SECOND,
  5 * MINUTE,
  20 * MINUTE,
  2 * HOUR,
  4 * HOUR,
  6 * HOUR,
] as const;

/** The original docs' policy: retries after 20, 30 and 50 minutes, then drop and blacklist (QBO.md §3). */
export const LEGACY_RETRY_DELAYS_MS = [20 * MINUTE, 30 * MINUTE, 50 * MINUTE] as const;

/** Under the legacy policy an endpoint that keeps failing for a day goes inactive (QBO.md §3). */
export const INACTIVE_AFTER_MS = 24 * HOUR;

/** When to retry after the `failures`-th failed attempt, or undefined when the policy gives up. */
export function retryDelay(policy: DeliveryPolicy, failures: number): number | undefined {
  if (policy === "legacy") return LEGACY_RETRY_DELAYS_MS[failures - 1];
  return CURRENT_RETRY_DELAYS_MS[Math.min(failures, CURRENT_RETRY_DELAYS_MS.length) - 1];
}
