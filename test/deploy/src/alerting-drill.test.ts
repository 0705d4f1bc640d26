// The alerting drill: the pipeline with the sandbox under QuickBooks' legacy policy, its clock 60 times
// faster than real time (a QuickBooks minute is a second), Debian's Prometheus scraping every service each
// second with the chart's rules rendered at that scale, Debian's Alertmanager with the chart's routing, and a
// stand-in for PagerDuty's Events API v2. Healthy traffic pages nobody; an ingress outage pages before the
// sandbox would blacklist the endpoint and resolves when fixed; the app's endpoint down pages; every
// dashboard panel's query returns data from that Prometheus.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  AlertmanagerConfigSpec,
  dashboardQueries,
  LEGACY_BLACKLIST_AFTER_SECONDS,
  plainAlertmanagerConfig,
  RUNBOOK_BASE_URL,
  rulesFile,
} from "@qbo-webhooks/monitoring";
import { type ProcessorService, startProcessor } from "@qbo-webhooks/processor/service";
import { logger, type Pipeline, startPipeline } from "@qbo-webhooks/processor/testing";
import { type AppReceiver, startAppReceiver } from "@qbo-webhooks/processor/testing/app-receiver";
import { type ReconcilerService, startReconciler } from "@qbo-webhooks/reconciler/service";
import { connectThroughConsent, reconcilerConfig } from "@qbo-webhooks/reconciler/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { z } from "zod";
import { AlertingStack, type PagerDutyEvent, prometheusTools, startPagerDuty } from "./alerting-stack.js";
import { k8sTools } from "./control-plane.js";

const run = promisify(execFile);
const CHART = fileURLToPath(new URL("../../../charts/qbo-webhooks", import.meta.url));
/** The sandbox's clock runs this many times faster than real time; the rules' durations shrink as much. */
const SPEED = 60;
const ROUTING_KEY = "drill-routing-key-0123456789abcdef";
const tools = await k8sTools();
const prometheus = await prometheusTools();
const missing = tools.missing ?? prometheus.missing;

describe.skipIf(missing !== undefined)(`the alerting drill ${missing ? `(skipped: ${missing})` : ""}`, () => {
  let pipeline: Pipeline;
  let app: AppReceiver;
  let processor: ProcessorService;
  let reconciler: ReconcilerService;
  let pagerDuty: Awaited<ReturnType<typeof startPagerDuty>>;
  let stack: AlertingStack;
  let traffic: ReturnType<typeof setInterval> | undefined;
  const drillStart = Date.now() / 1000;
  const targets = () =>
    [pipeline.ingress.opsPort, pipeline.ordering.opsPort, processor.opsPort, reconciler.opsPort].map(
      (port) => `127.0.0.1:${port}`,
    );
  const triggers = (alertname: string) =>
    pagerDuty.events.filter((e) => e.event_action === "trigger" && e.payload?.summary.startsWith(`${alertname}:`));
  const firstEvent = async (find: () => PagerDutyEvent | undefined, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const event = find();
      if (event) return event;
      if (Date.now() > deadline)
        throw new Error(`no such PagerDuty event in ${timeoutMs / 1000} s: ${JSON.stringify(pagerDuty.events)}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };

  beforeAll(async () => {
    pipeline = await startPipeline({ policy: "legacy", speed: SPEED });
    app = await startAppReceiver();
    processor = await startProcessor(pipeline.processorConfig("drill", "cdc", { url: app.url }), logger);
    reconciler = await startReconciler(reconcilerConfig(pipeline, "drill"), logger, {
      now: () => pipeline.sandbox.clock.now(),
    });
    // Connected as an operator would: the reconciler follows them (tokens, CDC, realm states).
    await connectThroughConsent(pipeline, reconciler);
    pagerDuty = await startPagerDuty();
    // The chart's routing, rendered with the drill's PagerDuty and waits, as a plain Alertmanager configuration.
    const { stdout } = await run(join(tools.bin, "helm3"), [
      "template",
      "qbo",
      CHART,
      "--kube-version",
      "1.37.0",
      "--show-only",
      "templates/alertmanagerconfig.yaml",
      ...["--set", "secrets.existingSecret=qbo-keys", "--set", "alerts.routing.enabled=true"],
      ...["--set", "alerts.routing.pagerduty.routingKeySecret.name=pagerduty"],
      ...["--set", `alerts.routing.pagerduty.url=${pagerDuty.url}`],
      ...["--set", "alerts.routing.groupWait=1s", "--set", "alerts.routing.groupInterval=2s"],
    ]);
    const resource = z.object({ spec: AlertmanagerConfigSpec }).parse(parse(stdout));
    stack = await AlertingStack.start({
      bin: prometheus.bin,
      rules: rulesFile({ policy: "legacy", timeScale: 1 / SPEED, runbookBaseUrl: RUNBOOK_BASE_URL }),
      alertmanagerConfig: plainAlertmanagerConfig(resource.spec, (secret) => {
        expect(secret).toEqual({ name: "pagerduty", key: "routing-key" });
        return ROUTING_KEY;
      }),
      targets: targets(),
    });
    // Companies change all through the drill: about six changes a second.
    const generator = pipeline.steppedTraffic(5, { skew: 0 });
    traffic = setInterval(() => generator.step(3), 500);
  }, 120_000);

  afterAll(async () => {
    clearInterval(traffic);
    await stack?.close();
    await pagerDuty?.close();
    await reconciler?.close();
    await processor?.close();
    await app?.close();
    await pipeline?.close();
  });

  it("drill - healthy traffic for a QuickBooks hour pages nobody", { timeout: 120_000 }, async () => {
    // Every service scraped, the rules evaluated.
    await expect.poll(async () => (await stack.query("up == 1")).length, { timeout: 20_000, interval: 500 }).toBe(4);
    await expect
      .poll(async () => (await stack.query("qbo:webhook_failed_answers:ratio_rate5m")).length, { timeout: 20_000 })
      .toBe(1);
    expect(await stack.unhealthyRules()).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 60_000));
    expect(await stack.query('ALERTS{severity="page"}')).toEqual([]);
    expect(pagerDuty.events).toEqual([]);
  });

  it("drill - an ingress outage under the legacy policy pages before the sandbox would blacklist the endpoint; the fix resolves it", {
    timeout: 180_000,
  }, async () => {
    const outageAt = pipeline.sandbox.clock.now();
    await pipeline.stopIngress();
    const page = await firstEvent(() => triggers("QboQuickBooksBlacklistRisk")[0], 60_000);
    const pagedAt = pipeline.sandbox.clock.now();
    const deliveries = pipeline.sandbox.deliveries("app");
    expect(deliveries.blacklisted).toBe(false);
    // QuickBooks blacklists 100 minutes after its first failed delivery (retries at +20, +50, +100).
    const firstFailure = deliveries.attempts.find((a) => !a.ok && a.at >= outageAt);
    expect(firstFailure, "the sandbox tried a delivery during the outage").toBeDefined();
    const blacklistAt = (firstFailure?.at ?? 0) + LEGACY_BLACKLIST_AFTER_SECONDS * 1000;
    const marginMinutes = (blacklistAt - pagedAt) / 60_000;
    process.stdout.write(
      `drill: paged ${((pagedAt - outageAt) / 60_000).toFixed(1)} QuickBooks minutes into the outage, ${marginMinutes.toFixed(1)} minutes before the blacklist\n`,
    );
    expect(marginMinutes).toBeGreaterThanOrEqual(60);
    expect(page).toMatchObject({
      routing_key: ROUTING_KEY,
      payload: { severity: "critical" },
      links: [{ href: `${RUNBOOK_BASE_URL}QboQuickBooksBlacklistRisk.md`, text: "runbook" }],
    });
    expect(page.dedup_key).not.toBe("");
    expect(page.payload?.summary).toContain("QuickBooks will blacklist the webhook endpoint");
    expect(page.payload?.custom_details?.runbook).toBe(`${RUNBOOK_BASE_URL}QboQuickBooksBlacklistRisk.md`);
    expect(triggers("QboIngressDown")).toHaveLength(1);

    await pipeline.restoreIngress();
    await stack.setTargets(targets());
    await firstEvent(
      () => pagerDuty.events.find((e) => e.event_action === "resolve" && e.dedup_key === page.dedup_key),
      60_000,
    );
    expect(pipeline.sandbox.deliveries("app").blacklisted).toBe(false);
  });

  it("drill - the app's endpoint refusing deliveries pages, and resolves when it takes them again", {
    timeout: 120_000,
  }, async () => {
    app.answer(() => 503);
    const page = await firstEvent(() => triggers("QboAppDeliveryFailing")[0], 60_000);
    expect(page.links?.[0]?.href).toBe(`${RUNBOOK_BASE_URL}QboAppDeliveryFailing.md`);
    app.answer(() => 200);
    await firstEvent(
      () => pagerDuty.events.find((e) => e.event_action === "resolve" && e.dedup_key === page.dedup_key),
      90_000,
    );
  });

  it("drill - every dashboard panel's query returns data from the drill's Prometheus", {
    timeout: 60_000,
  }, async () => {
    const panels = new Map<string, string[]>();
    for (const { dashboard, panel, expr } of dashboardQueries()) {
      const key = `${dashboard} / ${panel}`;
      panels.set(key, [...(panels.get(key) ?? []), expr]);
    }
    const empty: string[] = [];
    for (const [panel, exprs] of panels) {
      let series = 0;
      // Grafana's rate window at a 1 s scrape interval.
      for (const expr of exprs)
        series += await stack.seriesWithData(expr.replaceAll("$__rate_interval", "4s"), drillStart);
      if (series === 0) empty.push(`${panel}: ${exprs.join(" | ")}`);
    }
    expect(empty).toEqual([]);
  });
});
