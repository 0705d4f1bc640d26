import { DELIVERY_POLICIES } from "./alert-rules.js";
import { dashboards } from "./dashboards.js";
import { RUNBOOK_BASE_URL, rulesFile, rulesFileName } from "./rules-file.js";

/** The chart's files generated from this package (rules per policy, dashboards): path in the chart, content. */
export function chartFiles(): { path: string; text: string }[] {
  return [
    ...DELIVERY_POLICIES.map((policy) => ({
      path: rulesFileName(policy),
      text: rulesFile({ policy, timeScale: 1, runbookBaseUrl: RUNBOOK_BASE_URL }),
    })),
    ...Object.entries(dashboards()).map(([file, board]) => ({
      path: `files/dashboards/${file}`,
      text: `${JSON.stringify(board, null, 2)}\n`,
    })),
  ];
}
