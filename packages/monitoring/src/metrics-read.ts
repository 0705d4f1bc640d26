import { DELIVERY_POLICIES, ruleGroups } from "./alert-rules.js";
import { RUNBOOK_BASE_URL } from "./rules-file.js";

/**
 * The services' metric names (`qbo_…`) the rules of every policy read, as written in the queries: a
 * histogram appears as its `_bucket`, `_count` or `_sum` series. Recorded series (`qbo:…`) are not
 * among them.
 */
export function metricsRead(): string[] {
  const queries = DELIVERY_POLICIES.flatMap((policy) =>
    ruleGroups({ policy, timeScale: 1, runbookBaseUrl: RUNBOOK_BASE_URL }).flatMap((group) =>
      group.rules.map((rule) => rule.expr),
    ),
  );
  return [...new Set(queries.flatMap((query) => query.match(/\bqbo_[a-z0-9_]+/g) ?? []))].sort();
}
