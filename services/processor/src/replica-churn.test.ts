import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { seededRandom } from "@qbo-webhooks/sandbox";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AppReceiver, startAppReceiver } from "./testing/app-receiver.js";
import { type Pipeline, startPipeline } from "./testing/pipeline-harness.js";

const MAIN = fileURLToPath(new URL("../dist/processor.mjs", import.meta.url));
const APP_DOWN_MS = 120_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Processor replicas as real processes, joining and leaving (SIGTERM and kill -9) while the app
// refuses 30 % of deliveries and is down for two minutes. What the app ends with is the proof.
describe("processor replicas coming and going", () => {
  let pipeline: Pipeline;
  let app: AppReceiver;
  const children = new Map<string, ChildProcess>();
  const spawnReplica = (id: string) => {
    const child = spawn(process.execPath, [MAIN], {
      env: { PATH: process.env.PATH ?? "", ...pipeline.processorEnv(id, app.url) },
      stdio: ["ignore", "ignore", "inherit"],
    });
    children.set(id, child);
  };
  const stopReplica = async (id: string, signal: NodeJS.Signals) => {
    const child = children.get(id);
    if (!child) throw new Error(`no replica ${id}`);
    child.kill(signal);
    await once(child, "exit");
  };

  beforeAll(async () => {
    pipeline = await startPipeline({ realms: 6, processes: true });
    app = await startAppReceiver();
  });
  afterAll(async () => {
    for (const child of children.values())
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await app?.close();
    await pipeline?.close();
  });

  it("churn - 4 replicas added and removed, the app failing 30 % and down for 2 minutes: every change in the feed reaches the app once, in version order", {
    timeout: 360_000,
  }, async () => {
    const random = seededRandom(50);
    let down = false;
    app.answer(() => (down || random() < 0.3 ? 500 : 200));
    spawnReplica("c1");
    spawnReplica("c2");
    await pipeline.traffic(120, 51);
    spawnReplica("c3");
    spawnReplica("c4");
    down = true;
    const downSince = performance.now();
    await pipeline.traffic(90, 52);
    await stopReplica("c1", "SIGTERM");
    await pipeline.traffic(60, 53);
    await stopReplica("c2", "SIGKILL");
    spawnReplica("c5");
    await pipeline.traffic(60, 54);
    await sleep(Math.max(0, APP_DOWN_MS - (performance.now() - downSince)));
    down = false;
    await pipeline.traffic(60, 55);
    await stopReplica("c3", "SIGTERM");

    await expect
      .poll(() => pipeline.outputs(app), { timeout: 120_000, interval: 1000 })
      .toEqual(pipeline.exactOutputs(app));
    expect(app.badSignatures).toBe(0);
    // Every version the feed holds arrived at the app, in the feed's order, each once.
    const feed = Object.fromEntries(await pipeline.changeHistories());
    const received: Record<string, number[]> = {};
    for (const change of app.accepted) {
      if (!change.version) continue;
      const key = `${change.realmId}/${change.entity}/${change.id}`;
      received[key] = [...(received[key] ?? []), Number(change.version.syncToken)];
    }
    expect(received).toEqual(feed);
    expect(app.posts).toBeGreaterThan(app.accepted.length);
  });
});
