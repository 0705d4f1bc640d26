import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
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
    const result = await start({ LOCAL_DATA_DIR: dataDir, LOCAL_PORT_OFFSET: "31000" });
    expect(result).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/already running here \(pid \d+\)[\s\S]*kill/),
    });
    expect(existsSync(join(dataDir, "jetstream", "marker"))).toBe(true);
  });

  it("start - a port taken by another program is named, and nothing is touched", async () => {
    storeWithMarker();
    const blocker = createServer().listen(31000 + 8080, "127.0.0.1");
    try {
      const result = await start({ LOCAL_DATA_DIR: dataDir, LOCAL_PORT_OFFSET: "31000" });
      expect(result).toMatchObject({ code: 1, stderr: expect.stringMatching(/port 39080 \(ingress\) is in use/) });
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
