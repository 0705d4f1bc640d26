import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { Streams } from "@qbo-webhooks/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Pipeline, startPipeline } from "./testing/pipeline-harness.js";

const MAIN = fileURLToPath(new URL("../dist/processor.mjs", import.meta.url));

// Crashes for real: processor processes killed with -9, and nats-server killed and restarted.
describe("processor crashes", () => {
  let pipeline: Pipeline;
  const children: ChildProcess[] = [];
  const spawnProcessor = (id: string, env: Record<string, string> = {}) => {
    const child = spawn(process.execPath, [MAIN], {
      env: { PATH: process.env.PATH ?? "", ...pipeline.processorEnv(id), ...env },
      stdio: ["ignore", "ignore", "inherit"],
    });
    children.push(child);
    return child;
  };
  const changesApplied = async () => (await pipeline.reader.jsm.streams.info(Streams.changes.name)).state.messages;

  beforeAll(async () => {
    pipeline = await startPipeline();
  });
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await pipeline?.close();
  });

  it("crash - a processor killed (-9) mid-stream loses nothing: its partitions move on and the copy is exact", {
    timeout: 90_000,
  }, async () => {
    const first = spawnProcessor("crash-a");
    await pipeline.traffic(300, 8);
    await expect.poll(changesApplied, { timeout: 20_000 }).toBeGreaterThan(20);
    first.kill("SIGKILL");
    await once(first, "exit");
    // The replacement reads with Id IN queries, so both fetch strategies meet the crash.
    spawnProcessor("crash-b", { FETCH_STRATEGY: "query" });
    await pipeline.traffic(150, 9);
    const expected = pipeline.truth();
    await expect.poll(pipeline.copy, { timeout: 40_000, interval: 500 }).toEqual(expected);
    for (const [key, versions] of await pipeline.changeHistories()) {
      expect(versions, `${key} applied out of order`).toEqual([...versions].sort((a, b) => a - b));
    }
  });

  it("crash - nats-server killed (-9) and restarted: nothing lost", { timeout: 90_000 }, async () => {
    await pipeline.traffic(90, 10);
    await pipeline.nats.kill();
    await new Promise((resolve) => setTimeout(resolve, 500));
    await pipeline.nats.restart();
    await pipeline.traffic(90, 11);
    const expected = pipeline.truth();
    // Acks the killed server had not written down come back after the ack wait (60 s): allow for it.
    await expect.poll(pipeline.copy, { timeout: 80_000, interval: 1000 }).toEqual(expected);
  });
});
