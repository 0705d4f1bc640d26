import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Streams } from "@qbo-webhooks/contracts";
import { NatsClient } from "@qbo-webhooks/messaging";
import { quietPortOffset } from "@qbo-webhooks/messaging/testing";
import { createLogger } from "@qbo-webhooks/observability";
import { afterEach, describe, expect, it } from "vitest";

const START = fileURLToPath(new URL("../../../scripts/start-local.mjs", import.meta.url));
const run = promisify(execFile);

// `npm start` run while another runs: it must find out before it touches anything.
describe("npm start, a second time", () => {
  let dataDir = "";
  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));
  const start = (env: Record<string, string>, ...args: string[]) =>
    run(process.execPath, [START, ...args], { env: { PATH: process.env.PATH ?? "", ...env } }).catch(
      (err: { code: number; stdout: string; stderr: string }) => err,
    );
  const storeWithMarker = () => {
    dataDir = mkdtempSync(join(tmpdir(), "qbo-start-"));
    mkdirSync(join(dataDir, "jetstream"));
    writeFileSync(join(dataDir, "jetstream", "marker"), "a live store");
  };

  it("start - finds the running instance by its pid file, says how to stop it, and leaves its store alone", async () => {
    storeWithMarker();
    writeFileSync(join(dataDir, "npm-start.pid"), String(process.pid));
    const result = await start({ LOCAL_DATA_DIR: dataDir, LOCAL_PORT_OFFSET: String(await quietPortOffset()) });
    expect(result).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/already running here \(pid \d+\)[\s\S]*kill/),
    });
    expect(existsSync(join(dataDir, "jetstream", "marker"))).toBe(true);
  });

  it("start - a port taken by another program is named, and nothing is touched", async () => {
    storeWithMarker();
    const offset = await quietPortOffset();
    const blocker = createServer().listen(offset + 8080, "127.0.0.1");
    await once(blocker, "listening");
    try {
      const result = await start({ LOCAL_DATA_DIR: dataDir, LOCAL_PORT_OFFSET: String(offset) });
      expect(result).toMatchObject({
        code: 1,
        stderr: expect.stringMatching(new RegExp(`port ${offset + 8080} \\(ingress\\) is in use`)),
      });
      expect(existsSync(join(dataDir, "jetstream", "marker"))).toBe(true);
    } finally {
      blocker.close();
    }
  });

  it("start - answers --help with its usage and exit 0, and an unknown flag with exit 2", async () => {
    const help = await run(process.execPath, [START, "--help"]);
    expect(help.stdout).toMatch(/^Usage: npm start/);
    expect(await start({}, "--bogus")).toMatchObject({ code: 2, stderr: expect.stringMatching(/Unknown option/) });
  });
});

// `npm start` after `npm start`: the same companies, tokens and store; `--reset` starts afresh.
describe("npm start, again after a stop", () => {
  let dataDir = "";
  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

  it("start - goes on with the same companies, tokens and feed; --reset starts with new ones and an empty feed", {
    timeout: 240_000,
  }, async () => {
    dataDir = mkdtempSync(join(tmpdir(), "qbo-restart-"));
    const offset = await quietPortOffset();
    const env = {
      ...process.env,
      LOCAL_DATA_DIR: dataDir,
      LOCAL_PORT_OFFSET: String(offset),
      PROCESSORS: "1",
      SANDBOX_REALMS: "2",
      SANDBOX_HISTORY: "2-3",
      SANDBOX_TRAFFIC_RATE: "5",
    };
    const launch = async (...args: string[]) => {
      const launcher = spawn(process.execPath, [START, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
      let output = "";
      for (const stream of [launcher.stdout, launcher.stderr])
        stream.on("data", (chunk: Buffer) => (output += chunk.toString()));
      await expect.poll(() => output, { timeout: 60_000 }).toContain("qbo-webhooks is running locally");
      const passwords = JSON.parse(readFileSync(join(dataDir, "nats-passwords.json"), "utf8")) as { operator: string };
      const client = await NatsClient.connect({
        servers: [`nats://127.0.0.1:${4222 + offset}`],
        name: "restart-test",
        logger: createLogger({ service: "test", level: "silent" }),
        auth: { user: "operator", password: passwords.operator },
      });
      const feed = async () => {
        const { created, state } = await client.jsm.streams.info(Streams.changes.name);
        return { created, messages: state.messages, lastSeq: state.last_seq };
      };
      const companies = async () =>
        ((await (await fetch(`http://127.0.0.1:${8090 + offset}/_sandbox/companies`)).json()) as { realmId: string }[])
          .map((c) => c.realmId)
          .sort();
      const stop = async () => {
        await client.drain();
        launcher.kill("SIGINT");
        const [code] = await once(launcher, "exit");
        expect(code).toBe(0);
      };
      return { output: () => output, feed, companies, stop };
    };

    const first = await launch();
    expect(first.output()).toMatch(/sandbox companies: 2 connected through it now, 0 kept/);
    await expect.poll(async () => (await first.feed()).messages, { timeout: 60_000 }).toBeGreaterThan(20);
    const realms = await first.companies();
    const applied = await first.feed();
    await first.stop();

    const second = await launch();
    try {
      expect(second.output()).toMatch(/sandbox companies: 0 connected through it now, 2 kept/);
      expect(await second.companies()).toEqual(realms);
      const kept = await second.feed();
      expect(kept.created).toBe(applied.created);
      expect(kept.messages).toBeGreaterThanOrEqual(applied.messages);
      // The kept tokens still open the companies: new changes are fetched, applied and in the feed.
      await expect
        .poll(async () => (await second.feed()).lastSeq, { timeout: 60_000 })
        .toBeGreaterThan(kept.lastSeq + 10);
    } finally {
      await second.stop();
    }

    const reset = await launch("--reset");
    try {
      expect(reset.output()).toMatch(/sandbox companies: 2 connected through it now, 0 kept/);
      // A store made anew: the feed holds only what this start applied.
      expect(Date.parse((await reset.feed()).created)).toBeGreaterThan(Date.parse(applied.created));
    } finally {
      await reset.stop();
    }
  });
});
