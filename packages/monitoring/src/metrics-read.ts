import { DELIVERY_POLICIES, ruleGroups } from "./alert-rules.js";
import { dashboardQueries } from "./dashboards.js";
import { RUNBOOK_BASE_URL } from "./rules-file.js";

/** Every query the rules of both policies and the dashboards run. */
export function queries(): string[] {
  return [
    ...DELIVERY_POLICIES.flatMap((policy) =>
      ruleGroups({ policy, timeScale: 1, runbookBaseUrl: RUNBOOK_BASE_URL }).flatMap((group) =>
        group.rules.map((rule) => rule.expr),
      ),
    ),
    ...dashboardQueries().map((query) => query.expr),
  ];
}

/**
 * The services' metric names (`qbo_…`) the rules and the dashboards read, as written in the queries:
 * a histogram appears as its `_bucket`, `_count` or `_sum` series. Recorded series (`qbo:…`) are not
 * among them.
 */
export function metricsRead(): string[] {
  return [...new Set(queries().flatMap((query) => query.match(/\bqbo_[a-z0-9_]+/g) ?? []))].sort();
}
