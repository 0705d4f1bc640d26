// Adds up the JSON reports the packages' vitest runs wrote (one per run), and prints one closing line:
// "Tests: N passed, N failed[, N skipped]". Exits 1 when any failed or none ran.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "..");
let passed = 0;
let failed = 0;
let skipped = 0;
for (const group of ["packages", "services", "test"]) {
  for (const name of readdirSync(join(root, group))) {
    const reports = join(root, group, name, ".vitest");
    if (!existsSync(reports)) continue;
    for (const file of readdirSync(reports).filter((f) => /^results-\d+\.json$/.test(f))) {
      const results = JSON.parse(readFileSync(join(reports, file), "utf8"));
      passed += results.numPassedTests;
      failed += results.numFailedTests;
      skipped += results.numPendingTests + results.numTodoTests;
    }
  }
}
console.log(`Tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
