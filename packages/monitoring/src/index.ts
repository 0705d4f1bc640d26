export type { AlertRule, DeliveryPolicy, RecordingRule, RuleGroup, RuleOptions, Severity } from "./alert-rules.js";
export {
  CURRENT_PAGE_AFTER_SECONDS,
  CURRENT_TWENTY_MINUTE_STEP_AFTER_SECONDS,
  DELIVERY_POLICIES,
  LEGACY_BLACKLIST_AFTER_SECONDS,
  LEGACY_PAGE_MARGIN_SECONDS,
  ruleGroups,
} from "./alert-rules.js";
export { chartFiles } from "./chart-files.js";
export { promDuration } from "./duration.js";
export { metricsRead } from "./metrics-read.js";
export { RUNBOOK_BASE_URL, rulesFile, rulesFileName } from "./rules-file.js";
