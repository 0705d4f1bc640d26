import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { type AlertRule, DELIVERY_POLICIES, ruleGroups } from "./alert-rules.js";
import { chartFiles } from "./chart-files.js";
import { RUNBOOK_BASE_URL, rulesFileName } from "./rules-file.js";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const CHART = join(ROOT, "charts/qbo-webhooks");
const PROMTOOL_TESTS = fileURLToPath(new URL("../promtool/", import.meta.url));

async function promtool(): Promise<string> {
  const { stdout } = await run("bash", [join(ROOT, "scripts/ensure-prometheus.sh"), "--print-dir", "--check"]).catch(
    (err: { stderr?: string }) => {
      throw new Error(`promtool is missing (${err.stderr?.trim()}): run scripts/ensure-prometheus.sh`);
    },
  );
  return join(stdout.trim(), "bin/promtool");
}

const alerts = (policy: (typeof DELIVERY_POLICIES)[number]) =>
  ruleGroups({ policy, timeScale: 1, runbookBaseUrl: RUNBOOK_BASE_URL })
    .flatMap((group) => group.rules)
    .filter((rule): rule is AlertRule => "alert" in rule);

describe("alert rules", () => {
  it("rules - the chart's generated rules files are what the code generates (npm run generate -w @qbo-webhooks/monitoring)", async () => {
    for (const { path, text } of chartFiles()) expect(await readFile(join(CHART, path), "utf8"), path).toBe(text);
  });

  it("rules - promtool accepts both policies' rules files", { timeout: 30_000 }, async () => {
    const bin = await promtool();
    for (const policy of DELIVERY_POLICIES) await run(bin, ["check", "rules", join(CHART, rulesFileName(policy))]);
  });

  it("rules - every alert fires when it should and a healthy day stays silent (promtool test rules)", {
    timeout: 60_000,
  }, async () => {
    const bin = await promtool();
    // The tests both policies share run once against each policy's file.
    const dir = await mkdtemp(join(tmpdir(), "qbo-promtool-"));
    const shared = await readFile(join(PROMTOOL_TESTS, "every-policy.test.yaml"), "utf8");
    const files = [join(PROMTOOL_TESTS, "legacy.test.yaml"), join(PROMTOOL_TESTS, "current.test.yaml")];
    for (const policy of DELIVERY_POLICIES) {
      const file = join(dir, `every-policy-${policy}.test.yaml`);
      await writeFile(file, shared.replace("[RULES]", JSON.stringify([join(CHART, rulesFileName(policy))])));
      files.push(file);
    }
    const result = await run(bin, ["test", "rules", ...files]).catch(
      (err: { stdout?: string; stderr?: string }) => err,
    );
    expect(`${result.stdout ?? ""}${result.stderr ?? ""}`).not.toMatch(/FAILED|error/i);
    expect(result.stdout?.match(/SUCCESS/g)).toHaveLength(files.length);
  });

  it("rules - every alert pages or opens a ticket, says what and why, and has its runbook", async () => {
    for (const policy of DELIVERY_POLICIES) {
      for (const rule of alerts(policy)) {
        expect(["page", "ticket"]).toContain(rule.labels.severity);
        expect(rule.annotations.summary.length, rule.alert).toBeGreaterThan(10);
        expect(rule.annotations.description.length, rule.alert).toBeGreaterThan(20);
        expect(rule.annotations.runbook_url).toBe(`${RUNBOOK_BASE_URL}${rule.alert}.md`);
        const runbook = await readFile(join(ROOT, "docs/runbooks", `${rule.alert}.md`), "utf8");
        for (const section of ["## Meaning", "## Diagnose", "## Fix", "## Confirm"])
          expect(runbook, `${rule.alert}.md`).toContain(section);
      }
    }
  });

  it("rules - each policy has its own page: the blacklist under legacy, the backoff under today's queue", () => {
    const names = (policy: (typeof DELIVERY_POLICIES)[number]) => alerts(policy).map((rule) => rule.alert);
    expect(names("legacy")).toContain("QboQuickBooksBlacklistRisk");
    expect(names("legacy")).not.toContain("QboQuickBooksBackoffRisk");
    expect(names("current")).toContain("QboQuickBooksBackoffRisk");
    expect(names("current")).not.toContain("QboQuickBooksBlacklistRisk");
  });

  it("rules - a drill's time scale shortens every window and duration", () => {
    const scaled = ruleGroups({ policy: "legacy", timeScale: 1 / 60, runbookBaseUrl: RUNBOOK_BASE_URL });
    const rules = scaled.flatMap((group) => group.rules);
    const risk = rules.find((rule): rule is AlertRule => "alert" in rule && rule.alert === "QboWebhookAnswersFailing");
    expect(risk?.for).toBe("2s");
    const ratio = rules.find((rule) => "record" in rule && rule.record === "qbo:webhook_failed_answers:ratio_rate5m");
    expect(ratio?.expr).toContain("[5s]");
    expect(JSON.stringify(rules)).toContain(`+ ${6000 / 60} - time()`);
  });
});

describe("runbooks", () => {
  it("runbooks - every runbook belongs to an alert", async () => {
    const names = new Set(DELIVERY_POLICIES.flatMap((policy) => alerts(policy).map((rule) => `${rule.alert}.md`)));
    const dir = join(ROOT, "docs/runbooks");
    expect(existsSync(dir)).toBe(true);
    for (const file of await readdir(dir)) if (file !== "README.md") expect(names, file).toContain(file);
  });
});
