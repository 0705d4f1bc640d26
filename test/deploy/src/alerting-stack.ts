import { type ChildProcess, execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { freePort } from "@qbo-webhooks/messaging/testing";
import { stringify } from "yaml";
import { z } from "zod";

const run = promisify(execFile);
const ENSURE = fileURLToPath(new URL("../../../scripts/ensure-prometheus.sh", import.meta.url));

/** Where scripts/ensure-prometheus.sh keeps promtool, prometheus and alertmanager, or why they are missing. */
export async function prometheusTools(): Promise<{ bin: string; missing: string | undefined }> {
  const { stdout, stderr } = await run("bash", [ENSURE, "--print-dir", "--check"]).catch(
    (err: { stderr?: string }) => ({ stdout: "", stderr: err.stderr ?? "" }),
  );
  const dir = stdout.trim();
  return dir
    ? { bin: join(dir, "bin"), missing: undefined }
    : { bin: "", missing: stderr.trim() || "Prometheus is not fetched" };
}

/** What PagerDuty's Events API v2 receives: https://developer.pagerduty.com/docs/events-api-v2/trigger-events/ */
export const PagerDutyEvent = z.object({
  routing_key: z.string(),
  event_action: z.enum(["trigger", "acknowledge", "resolve"]),
  dedup_key: z.string(),
  payload: z
    .object({
      summary: z.string(),
      severity: z.string(),
      source: z.string(),
      custom_details: z.record(z.string(), z.unknown()).optional(),
    })
    .optional(),
  links: z.array(z.object({ href: z.string(), text: z.string().optional() })).optional(),
});
export type PagerDutyEvent = z.infer<typeof PagerDutyEvent>;

/** A stand-in for PagerDuty's Events API v2 on loopback: records every event it accepts, answers as PagerDuty does. */
export async function startPagerDuty(): Promise<{
  url: string;
  events: PagerDutyEvent[];
  close(): Promise<void>;
}> {
  const events: PagerDutyEvent[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const parsed = PagerDutyEvent.safeParse(JSON.parse(Buffer.concat(chunks).toString() || "null"));
      if (req.method !== "POST" || req.url !== "/v2/enqueue" || !parsed.success) {
        res.writeHead(400, { "content-type": "application/json" }).end('{"status":"invalid event"}');
        return;
      }
      events.push(parsed.data);
      res
        .writeHead(202, { "content-type": "application/json" })
        .end(JSON.stringify({ status: "success", message: "Event processed", dedup_key: parsed.data.dedup_key }));
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/enqueue`,
    events,
    async close() {
      server.closeAllConnections();
      server.close();
    },
  };
}

const QueryResult = z.object({
  status: z.literal("success"),
  data: z.object({
    result: z.array(
      z.object({
        metric: z.record(z.string(), z.string()),
        values: z.array(z.tuple([z.number(), z.string()])).optional(),
      }),
    ),
  }),
});

const RulesResult = z.object({
  data: z.object({
    groups: z.array(
      z.object({
        rules: z.array(z.object({ name: z.string(), health: z.string(), lastError: z.string().optional() })),
      }),
    ),
  }),
});

/**
 * Prometheus and Alertmanager on loopback: Prometheus scrapes the targets given (file-based
 * discovery, so targets can move), evaluates the rules file every second and sends alerts to the
 * Alertmanager, which routes them with the configuration given.
 */
export class AlertingStack {
  readonly #children: ChildProcess[] = [];

  private constructor(
    readonly dir: string,
    readonly prometheusUrl: string,
    readonly alertmanagerUrl: string,
  ) {}

  static async start(options: {
    bin: string;
    rules: string;
    alertmanagerConfig: object;
    targets: readonly string[];
  }): Promise<AlertingStack> {
    const dir = await mkdtemp(join(tmpdir(), "qbo-alerting-"));
    const [promPort, amPort] = [await freePort(), await freePort()];
    const stack = new AlertingStack(dir, `http://127.0.0.1:${promPort}`, `http://127.0.0.1:${amPort}`);
    await writeFile(join(dir, "rules.yaml"), options.rules);
    await writeFile(join(dir, "alertmanager.yml"), stringify(options.alertmanagerConfig));
    await stack.setTargets(options.targets);
    await writeFile(
      join(dir, "prometheus.yml"),
      stringify({
        global: { scrape_interval: "1s", scrape_timeout: "900ms", evaluation_interval: "1s" },
        rule_files: [join(dir, "rules.yaml")],
        alerting: { alertmanagers: [{ static_configs: [{ targets: [`127.0.0.1:${amPort}`] }] }] },
        scrape_configs: [{ job_name: "qbo-webhooks", file_sd_configs: [{ files: [join(dir, "targets.json")] }] }],
      }),
    );
    stack.#spawn(join(options.bin, "alertmanager"), [
      `--config.file=${join(dir, "alertmanager.yml")}`,
      `--storage.path=${join(dir, "alertmanager-data")}`,
      `--web.listen-address=127.0.0.1:${amPort}`,
      "--cluster.listen-address=",
      "--log.level=warn",
    ]);
    stack.#spawn(join(options.bin, "prometheus"), [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "prometheus-data")}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      "--log.level=warn",
    ]);
    for (const url of [`${stack.alertmanagerUrl}/-/ready`, `${stack.prometheusUrl}/-/ready`]) {
      const deadline = Date.now() + 30_000;
      while (
        !(await fetch(url).then(
          (r) => r.ok,
          () => false,
        ))
      ) {
        if (Date.now() > deadline) throw new Error(`${url} not ready after 30 s`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    return stack;
  }

  #spawn(bin: string, args: string[]): void {
    const child = spawn(bin, args, { stdio: ["ignore", "ignore", "inherit"] });
    this.#children.push(child);
  }

  /** The ops addresses (host:port) Prometheus scrapes; written atomically, picked up within a second. */
  async setTargets(targets: readonly string[]): Promise<void> {
    const file = join(this.dir, "targets.json");
    await writeFile(`${file}.tmp`, JSON.stringify([{ targets }]));
    await rename(`${file}.tmp`, file);
  }

  /** An instant query's series (labels only). */
  async query(expr: string): Promise<Record<string, string>[]> {
    const body = QueryResult.parse(
      await (await fetch(`${this.prometheusUrl}/api/v1/query?${new URLSearchParams({ query: expr })}`)).json(),
    );
    return body.data.result.map((series) => series.metric);
  }

  /** Rules whose last evaluation failed, with the error: none when every query is valid. */
  async unhealthyRules(): Promise<string[]> {
    const body = RulesResult.parse(await (await fetch(`${this.prometheusUrl}/api/v1/rules`)).json());
    return body.data.groups
      .flatMap((group) => group.rules)
      .filter((rule) => rule.health !== "ok")
      .map((rule) => `${rule.name}: ${rule.health} ${rule.lastError ?? ""}`);
  }

  /** How many series of a range query had at least one value between `start` and now (seconds). */
  async seriesWithData(expr: string, start: number): Promise<number> {
    const params = new URLSearchParams({
      query: expr,
      start: String(start),
      end: String(Date.now() / 1000),
      step: "1",
    });
    const response = await fetch(`${this.prometheusUrl}/api/v1/query_range?${params}`);
    const body = QueryResult.parse(await response.json());
    return body.data.result.filter((series) => (series.values ?? []).length > 0).length;
  }

  async close(): Promise<void> {
    for (const child of this.#children) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        await once(child, "exit");
      }
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}
