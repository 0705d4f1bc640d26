// Adds up the JSON reports the packages' vitest runs wrote (one per run), names every failed test
// with the first line of its failure (CI keeps only the end of the output), and prints one closing
// line: "Tests: N passed, N failed[, N skipped]". Exits 1 when any failed or none ran.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";

const root = join(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "..");
let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];
for (const group of ["packages", "services", "test"]) {
  for (const name of readdirSync(join(root, group))) {
    const reports = join(root, group, name, ".vitest");
    if (!existsSync(reports)) continue;
    for (const file of readdirSync(reports).filter((f) => /^results-\d+\.json$/.test(f))) {
      const results = JSON.parse(readFileSync(join(reports, file), "utf8"));
      passed += results.numPassedTests;
      failed += results.numFailedTests;
      skipped += results.numPendingTests + results.numTodoTests;
      for (const suite of results.testResults ?? []) {
        const where = relative(root, suite.name);
        const tests = (suite.assertionResults ?? []).filter((t) => t.status === "failed");
        for (const test of tests) failures.push(`${where} > ${test.fullName}\n    ${firstLine(test.failureMessages)}`);
        // A file that failed to load has no test results, only its message.
        if (suite.status === "failed" && tests.length === 0)
          failures.push(`${where}\n    ${firstLine([suite.message])}`);
      }
    }
  }
}
if (failures.length > 0) console.log(`Failed:\n${failures.map((f) => `  ${f}`).join("\n")}`);
console.log(`Tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 || passed === 0 || failures.length > 0 ? 1 : 0);

function firstLine(messages) {
  const text = (messages ?? []).find((m) => typeof m === "string" && m.trim() !== "") ?? "(no message)";
  return text.trim().split("\n")[0].slice(0, 300);
}
