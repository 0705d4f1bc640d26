/**
 * QuickBooks writes times in the company's zone with an offset, e.g. `2015-12-23T12:55:50-08:00`
 * (QBO.md §4). Sandbox companies keep Pacific standard time.
 */
export function formatQboTime(ms: number): string {
  return `${pacific(ms)}-08:00`;
}

/** The legacy webhook's other `lastUpdated` format: to the second, offset without a colon (QBO.md §1a). */
export function formatLegacyOffsetTime(ms: number): string {
  return `${pacific(ms)}-0800`;
}

function pacific(ms: number): string {
  return new Date(ms - 8 * 3600_000).toISOString().slice(0, 19);
}
