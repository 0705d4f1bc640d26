import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";

const MAIN = fileURLToPath(new URL("../dist/sandbox.mjs", import.meta.url));

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

  describe("with SANDBOX_STATE_FILE", () => {
    let dir = "";
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    async function started(file: string) {
      const sandbox = run({ SANDBOX_PORT: "0", SANDBOX_REALMS: "2", SANDBOX_HISTORY: "2-3", SANDBOX_STATE_FILE: file });
      await expect.poll(() => sandbox.stdout().includes("\n"), { timeout: 10_000 }).toBe(true);
      const { url, realms } = JSON.parse(sandbox.stdout().split("\n")[0] ?? "{}") as { url: string; realms: string[] };
      return { ...sandbox, url, realms };
    }
    const post = (url: string, body: unknown) =>
      fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const refresh = (url: string, token: string) =>
      fetch(`${url}/oauth2/v1/tokens/bearer`, {
        method: "POST",
        headers: { authorization: `Basic ${Buffer.from("local-client-id:local-client-secret").toString("base64")}` },
        body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: token }),
      });

    it("main - a restart, even after kill -9, keeps the companies, their ids and change times, and the grants' latest tokens", async () => {
      dir = mkdtempSync(join(tmpdir(), "qbo-sandbox-"));
      const file = join(dir, "sandbox.json");
      const first = await started(file);
      const [realm = ""] = first.realms;
      const granted = (await (
        await post(`${first.url}/_sandbox/apps/local-app/connections`, { realmId: realm })
      ).json()) as {
        refresh_token: string;
      };
      const rotated = (await (await refresh(first.url, granted.refresh_token)).json()) as { refresh_token: string };
      const made = (await (
        await post(`${first.url}/_sandbox/companies/${realm}/changes`, { operation: "Create", entity: "Customer" })
      ).json()) as { Id: string; MetaData: { LastUpdatedTime: string } };
      const books: unknown = await (await fetch(`${first.url}/_sandbox/companies/${realm}`)).json();
      // Saved as it changes (within 250 ms), not only at a clean stop.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      first.child.kill("SIGKILL");
      await once(first.child, "exit");

      const second = await started(file);
      try {
        expect(second.realms).toEqual(first.realms);
        expect(await (await fetch(`${second.url}/_sandbox/companies/${realm}`)).json()).toEqual(books);
        // The app's latest refresh token works; the one it replaced stays refused.
        expect((await refresh(second.url, rotated.refresh_token)).status).toBe(200);
        expect((await refresh(second.url, granted.refresh_token)).status).toBe(400);
        // Ids and change times go on from where they were.
        const next = (await (
          await post(`${second.url}/_sandbox/companies/${realm}/changes`, { operation: "Create", entity: "Customer" })
        ).json()) as { Id: string; MetaData: { LastUpdatedTime: string } };
        expect(Number(next.Id)).toBe(Number(made.Id) + 1);
        expect(Date.parse(next.MetaData.LastUpdatedTime)).toBeGreaterThan(Date.parse(made.MetaData.LastUpdatedTime));
      } finally {
        second.child.kill("SIGTERM");
        await once(second.child, "exit");
      }
    });

    it("main - a state file that holds no saved sandbox is named, with what to do (exit 1)", async () => {
      dir = mkdtempSync(join(tmpdir(), "qbo-sandbox-"));
      const file = join(dir, "sandbox.json");
      writeFileSync(file, '{"version": 7}');
      const sandbox = run({ SANDBOX_PORT: "0", SANDBOX_STATE_FILE: file });
      const [code] = await once(sandbox.child, "exit");
      expect(code).toBe(1);
      expect(sandbox.stderr()).toMatch(new RegExp(`SANDBOX_STATE_FILE: ${file} holds no saved sandbox .*delete it`));
    });
  });
});
