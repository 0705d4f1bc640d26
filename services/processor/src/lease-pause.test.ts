import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AppReceiver, startAppReceiver } from "./testing/app-receiver.js";
import { type Pipeline, startPipeline } from "./testing/pipeline-harness.js";

const MAIN = fileURLToPath(new URL("../dist/processor.mjs", import.meta.url));
const TTL_MS = 3000;

// Two real processes: the old holder is frozen with SIGSTOP while QuickBooks answers slowly, its
// leases lapse and another process takes over; then it is thawed with batches half done. What it
// appends after that must never put an entity's version behind a newer one.
describe("processor: a paused lease holder", () => {
  let pipeline: Pipeline;
  let app: AppReceiver;
  const children: ChildProcess[] = [];
  const spawnProcessor = (id: string) => {
    const child = spawn(process.execPath, [MAIN], {
      env: { PATH: process.env.PATH ?? "", ...pipeline.processorEnv(id, app.url), LEASE_TTL_MS: String(TTL_MS) },
      stdio: ["ignore", "ignore", "inherit"],
    });
    children.push(child);
    return child;
  };

  beforeAll(async () => {
    pipeline = await startPipeline({ processes: true });
    app = await startAppReceiver();
  });
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await app?.close();
    await pipeline?.close();
  });

  it("lease - a holder SIGSTOPped past its TTL and then resumed never puts an older version after a newer one, in the feed or at the app", {
    timeout: 120_000,
  }, async () => {
    const old = spawnProcessor("paused");
    await pipeline.traffic(60, 41);
    await expect
      .poll(async () => (await pipeline.feedCopy())[pipeline.realms[0]?.realmId ?? ""], { timeout: 20_000 })
      .toBeDefined();
    // QuickBooks slows down, so the old holder is caught with fetches and batches under way.
    pipeline.sandbox.setApiBehaviour({ latencyMs: 800 });
    await pipeline.traffic(60, 42);
    old.kill("SIGSTOP");
    const successor = spawnProcessor("successor");
    await pipeline.traffic(90, 43);
    // Past the old holder's TTL, the successor has taken every partition and applied what came since.
    await new Promise((resolve) => setTimeout(resolve, 2 * TTL_MS));
    old.kill("SIGCONT");
    await pipeline.traffic(60, 44);
    pipeline.sandbox.setApiBehaviour({});
    await expect
      .poll(() => pipeline.outputs(app), { timeout: 60_000, interval: 1000 })
      .toEqual(pipeline.exactOutputs(app));
    old.kill("SIGTERM");
    successor.kill("SIGTERM");
    await Promise.all([once(old, "exit"), once(successor, "exit")]);
  });
});
