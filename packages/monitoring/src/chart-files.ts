import { DELIVERY_POLICIES } from "./alert-rules.js";
import { RUNBOOK_BASE_URL, rulesFile, rulesFileName } from "./rules-file.js";

/** The files of the chart that are generated from this package: path (relative to the chart) and content. */
export function chartFiles(): { path: string; text: string }[] {
  return DELIVERY_POLICIES.map((policy) => ({
    path: rulesFileName(policy),
    text: rulesFile({ policy, timeScale: 1, runbookBaseUrl: RUNBOOK_BASE_URL }),
  }));
}
