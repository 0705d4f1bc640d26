/** How long to wait before retry number `attempt` (from 0): `baseMs` doubling each time, at most `capMs`. */
export function backoffMs(attempt: number, baseMs: number, capMs: number): number {
  return Math.min(capMs, baseMs * 2 ** attempt);
}
