/**
 * QuickBooks writes times in the company's zone with an offset, e.g. `2015-12-23T12:55:50-08:00`
 * (QBO.md §4). Sandbox companies keep Pacific standard time.
 */
export function formatQboTime(ms: number): string {
  const offsetMinutes = -8 * 60;
  const shifted = new Date(ms + offsetMinutes * 60_000).toISOString().slice(0, 19);
  return `${shifted}-08:00`;
}
