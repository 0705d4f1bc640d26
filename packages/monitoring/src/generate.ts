// Writes the chart's generated monitoring files (the rules file of each delivery policy, the dashboards) from the code
// here. The tests fail when a committed file differs from what this writes.
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chartFiles } from "./chart-files.js";

const chart = fileURLToPath(new URL("../../../charts/qbo-webhooks/", import.meta.url));
for (const { path, text } of chartFiles()) {
  await mkdir(dirname(`${chart}${path}`), { recursive: true });
  await writeFile(`${chart}${path}`, text);
  process.stdout.write(`wrote charts/qbo-webhooks/${path}\n`);
}
