const UNITS = [
  ["d", 86_400_000],
  ["h", 3_600_000],
  ["m", 60_000],
  ["s", 1000],
  ["ms", 1],
] as const;

/**
 * A Prometheus duration for a number of seconds, in the largest unit that holds it exactly:
 * 300 → "5m", 90 → "90s", 0.5 → "500ms". Rounded to whole milliseconds, at least 1 ms (Prometheus
 * has nothing finer, and a scaled window must not become 0).
 */
export function promDuration(seconds: number): string {
  const ms = Math.max(1, Math.round(seconds * 1000));
  for (const [unit, size] of UNITS) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}
