export type { AlertRule, DeliveryPolicy, RecordingRule, RuleGroup, RuleOptions, Severity } from "./alert-rules.js";
export {
  CURRENT_PAGE_AFTER_SECONDS,
  CURRENT_TWENTY_MINUTE_STEP_AFTER_SECONDS,
  DELIVERY_POLICIES,
  LEGACY_BLACKLIST_AFTER_SECONDS,
  LEGACY_PAGE_MARGIN_SECONDS,
  ruleGroups,
} from "./alert-rules.js";
export type { SecretReader } from "./alertmanager-config.js";
export { AlertmanagerConfigSpec, plainAlertmanagerConfig } from "./alertmanager-config.js";
export { chartFiles } from "./chart-files.js";
export { dashboardQueries, dashboards } from "./dashboards.js";
export { promDuration } from "./duration.js";
export { metricsRead, queries } from "./metrics-read.js";
export { RUNBOOK_BASE_URL, rulesFile, rulesFileName } from "./rules-file.js";
