import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { freePort, NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import { metricsRead } from "@qbo-webhooks/monitoring";
import { Sandbox } from "@qbo-webhooks/sandbox";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ASSEMBLE = fileURLToPath(new URL("../../../scripts/assemble-image.sh", import.meta.url));
const run = promisify(execFile);

// The image's last stage holds exactly what scripts/assemble-image.sh assembles (the Dockerfile runs
// it). Assembled here outside the repository, with no node_modules anywhere above it, every service
// must start and become ready: a dependency left out of a bundle, or a file read at run time that is
// not there, fails this test as it would fail the pods.
describe("the image's files", () => {
  let app = "";
  let nats: NatsServerProcess;
  let sandbox: Sandbox;
  const children: ChildProcess[] = [];
  /** Metric families each service exports (name → type), read from its /metrics while it ran. */
  const exported = new Map<string, Map<string, string>>();
  /** Metric families with a help text, per service. */
  const helped = new Map<string, Set<string>>();

  beforeAll(async () => {
    app = await mkdtemp(join(tmpdir(), "qbo-image-"));
    await run("bash", [ASSEMBLE, app], { timeout: 120_000 });
    nats = await NatsServerProcess.start();
    sandbox = await Sandbox.start();
  }, 150_000);
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await sandbox?.close();
    await nats?.dispose();
    await rm(app, { recursive: true, force: true });
  });

  it("image - holds one bundled file per program with its source map, and no node_modules", async () => {
    const programs = ["ingress", "ordering", "processor", "reconciler", "sandbox", "qbo-webhooks"];
    expect((await readdir(app)).sort()).toEqual(programs.flatMap((p) => [`${p}.mjs`, `${p}.mjs.map`]).sort());
  });

  /** Each service with the environment the chart sets for it (ports free ones). */
  const serviceEnvs = async (): Promise<[string, Record<string, string>][]> => {
    const quickbooks = {
      QBO_ENVIRONMENT: "sandbox",
      QBO_API_BASE_URL: sandbox.url,
      QBO_CLIENT_ID: "image-test-client",
      QBO_CLIENT_SECRET: "image-test-secret",
      TOKEN_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    };
    return [
      ["ingress", { QBO_VERIFIER_TOKENS: "image-test-verifier", HTTP_PORT: String(await freePort()) }],
      ["ordering", {}],
      ["processor", quickbooks],
      ["reconciler", { ...quickbooks, HTTP_PORT: String(await freePort()) }],
    ];
  };

  it("image - each service starts from it alone (in its directory, with only the environment the chart sets), is ready, and stops cleanly on SIGTERM", {
    timeout: 90_000,
  }, async () => {
    const services = await serviceEnvs();
    await Promise.all(
      services.map(async ([name, env]) => {
        const opsPort = await freePort();
        const child = spawn(process.execPath, ["--enable-source-maps", join(app, `${name}.mjs`)], {
          cwd: app,
          // Only what the chart sets: no NODE_PATH, nothing of this repository.
          env: { PATH: process.env.PATH ?? "", NATS_URL: nats.url, OPS_PORT: String(opsPort), ...env },
          stdio: ["ignore", "ignore", "pipe"],
        });
        children.push(child);
        let stderr = "";
        child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
        await expect
          .poll(
            async () => {
              if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}): ${stderr}`);
              return (await fetch(`http://127.0.0.1:${opsPort}/readyz`).catch(() => undefined))?.status;
            },
            { timeout: 30_000, interval: 250 },
          )
          .toBe(200);
        const text = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
        exported.set(name, new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1] ?? "", m[2] ?? ""])));
        helped.set(name, new Set([...text.matchAll(/^# HELP (\S+) \S.*$/gm)].map((m) => m[1] ?? "")));
        child.kill("SIGTERM");
        const [code] = await once(child, "exit");
        expect(code, `${name}: ${stderr}`).toBe(0);
      }),
    );
  });

  it("image - a service whose port is taken says in one line which port and which variable moves it, and exits 1 before it connects to anything", {
    timeout: 90_000,
  }, async () => {
    // Nothing listens at this NATS address: a service that connected first would never get to its ports.
    const nowhere = `nats://127.0.0.1:${await freePort()}`;
    const cases = (await serviceEnvs()).flatMap(([name, env]) =>
      ["OPS_PORT", ...("HTTP_PORT" in env ? ["HTTP_PORT"] : [])].map((variable) => ({ name, env, variable })),
    );
    for (const { name, env, variable } of cases) {
      const holder = createServer();
      holder.listen(0);
      await once(holder, "listening");
      const taken = (holder.address() as AddressInfo).port;
      try {
        const child = spawn(process.execPath, [join(app, `${name}.mjs`)], {
          cwd: app,
          env: {
            PATH: process.env.PATH ?? "",
            NATS_URL: nowhere,
            ...env,
            OPS_PORT: String(await freePort()),
            [variable]: String(taken),
          },
          stdio: ["ignore", "ignore", "pipe"],
        });
        children.push(child);
        let stderr = "";
        child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
        const started = performance.now();
        const [code] = await once(child, "exit");
        expect(code, `${name} ${variable}: ${stderr}`).toBe(1);
        expect(stderr, `${name} ${variable}`).toMatch(
          new RegExp(
            `^${name}: port ${taken} on \\S+ is taken by another program: stop it, or set ${variable} to a free port\\n$`,
          ),
        );
        expect(performance.now() - started, `${name} ${variable}`).toBeLessThan(10_000);
      } finally {
        holder.close();
      }
    }
  });

  it("image - every metric the alert rules and dashboards read is exported by a service; every metric has help text, counters end in _total; every service reports qbo_build_info, qbo_ready and qbo_nats_connected", () => {
    expect(exported.size).toBe(4);
    const families = new Map([...exported.values()].flatMap((metrics) => [...metrics]));
    for (const name of metricsRead()) {
      if (families.has(name)) continue;
      // A histogram's series are read by their family's name plus _bucket, _count or _sum.
      expect(families.get(name.replace(/_(bucket|count|sum)$/, "")), `${name}: no service exports it`).toBe(
        "histogram",
      );
    }
    for (const [service, metrics] of exported) {
      expect(metrics.get("qbo_build_info"), service).toBe("gauge");
      expect(metrics.get("qbo_ready"), service).toBe("gauge");
      expect(metrics.get("qbo_nats_connected"), service).toBe("gauge");
      for (const [name, type] of metrics) {
        if (type === "counter") expect(name, service).toMatch(/_total$/);
        expect(helped.get(service)?.has(name), `${service}: ${name} has no help text`).toBe(true);
      }
    }
  });

  it("image - the CLI runs from it (kubectl exec … node /app/qbo-webhooks.mjs status)", async () => {
    const { stdout } = await run(process.execPath, [join(app, "qbo-webhooks.mjs"), "--help"], { cwd: app });
    expect(stdout).toMatch(/^Usage: qbo-webhooks/);
  });
});
