import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));

function run(env: Record<string, string>) {
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return { child, stdout: () => stdout, stderr: () => stderr };
}

describe("npm run sandbox", () => {
  it("main - starts on the configured port and speed, prints where it listens, and stops on SIGTERM", async () => {
    const sandbox = run({ SANDBOX_PORT: "0", SANDBOX_SPEED: "60", SANDBOX_REALMS: "3" });
    await expect.poll(() => sandbox.stdout().includes("\n"), { timeout: 10_000 }).toBe(true);
    const started = JSON.parse(sandbox.stdout().split("\n")[0] ?? "{}") as {
      url: string;
      speed: number;
      realms: string[];
    };
    expect(started.speed).toBe(60);
    expect(started.realms).toHaveLength(3);
    const companies = (await (await fetch(`${started.url}/_sandbox/companies`)).json()) as unknown[];
    expect(companies).toHaveLength(3);
    const clock = (await (await fetch(`${started.url}/_sandbox/clock`)).json()) as { speed: number; now: string };
    expect(clock.speed).toBe(60);
    // Books kept long before we were connected: tens of entities of each type, the oldest months old.
    const books = (await (await fetch(`${started.url}/_sandbox/companies/${started.realms[0]}`)).json()) as Record<
      string,
      Record<string, { MetaData: { CreateTime: string } }>
    >;
    const counts = Object.values(books).map((table) => Object.keys(table).length);
    expect(counts.length).toBeGreaterThan(15);
    expect(Math.min(...counts)).toBeGreaterThanOrEqual(10);
    expect(Math.max(...counts)).toBeLessThanOrEqual(60);
    const created = Object.values(books).flatMap((table) =>
      Object.values(table).map((e) => Date.parse(e.MetaData.CreateTime)),
    );
    expect(Date.parse(clock.now) - Math.min(...created)).toBeGreaterThan(300 * 24 * 3600_000);
    sandbox.child.kill("SIGTERM");
    const [code] = await once(sandbox.child, "exit");
    expect(code).toBe(0);
  });

  it("main - refuses bad settings, naming them", async () => {
    const sandbox = run({ SANDBOX_PORT: "http", SANDBOX_POLICY: "sometimes", SANDBOX_HISTORY: "60-10" });
    const [code] = await once(sandbox.child, "exit");
    expect(code).toBe(1);
    expect(sandbox.stderr()).toMatch(/SANDBOX_PORT/);
    expect(sandbox.stderr()).toMatch(/SANDBOX_POLICY/);
    expect(sandbox.stderr()).toMatch(/SANDBOX_HISTORY: min must not exceed max/);
  });
});
