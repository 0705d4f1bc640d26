import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { Streams } from "@qbo-webhooks/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AppReceiver, startAppReceiver } from "./testing/app-receiver.js";
import { type Pipeline, startPipeline } from "./testing/pipeline-harness.js";
import type { ServiceProcess } from "./testing/service-process.js";

const MAIN = fileURLToPath(new URL("../dist/processor.mjs", import.meta.url));

// Crashes for real, each service a process of its own: processors, ordering and the ingress killed
// with -9, and nats-server killed and restarted. Judged where users look: our copy, the feed and
// what an app received, against QuickBooks.
describe("crashes of every service and of NATS", () => {
  let pipeline: Pipeline;
  let app: AppReceiver;
  const children: ChildProcess[] = [];
  const spawnProcessor = (id: string, env: Record<string, string> = {}) => {
    const child = spawn(process.execPath, [MAIN], {
      env: { PATH: process.env.PATH ?? "", ...pipeline.processorEnv(id, app.url), ...env },
      stdio: ["ignore", "ignore", "inherit"],
    });
    children.push(child);
    return child;
  };
  const changesApplied = async () => (await pipeline.reader.jsm.streams.info(Streams.changes.name)).state.messages;
  const expectExactEverywhere = (timeout: number) =>
    expect.poll(() => pipeline.outputs(app), { timeout, interval: 1000 }).toEqual(pipeline.exactOutputs(app));
  const deliveries = () => pipeline.sandbox.deliveries("app").attempts;
  /** Resolves once QuickBooks has delivered `count` more notifications than when called. */
  const untilDelivered = async (count: number) => {
    const start = deliveries().filter((attempt) => attempt.ok).length;
    await expect.poll(() => deliveries().filter((attempt) => attempt.ok).length - start).toBeGreaterThanOrEqual(count);
  };
  const failedDeliveries = () => deliveries().filter((attempt) => !attempt.ok).length;
  /** Traffic that says whether it is still being made, so a test can show its kill fell amid it. */
  const runningTraffic = (changes: number, seed: number) => {
    let running = true;
    const done = pipeline.traffic(changes, seed).finally(() => {
      running = false;
    });
    return { done, running: () => running };
  };
  const service = (name: "ingress" | "ordering"): ServiceProcess => {
    const found = pipeline.services?.[name];
    if (!found) throw new Error("the pipeline runs its services in-process");
    return found;
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

  it("crash - a processor killed (-9) mid-stream loses nothing: its partitions move on and the copy, the feed and the app are exact", {
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
    await expectExactEverywhere(40_000);
  });

  it("crash - ordering killed (-9) under traffic and restarted: what it had taken and not acknowledged is ordered again, nothing lost", {
    timeout: 90_000,
  }, async () => {
    const traffic = runningTraffic(900, 12);
    await untilDelivered(5);
    await service("ordering").signal("SIGKILL");
    expect(traffic.running()).toBe(true);
    await traffic.done;
    await service("ordering").restart();
    // Notifications taken and not acknowledged come back after the consumer's ack wait.
    await expectExactEverywhere(80_000);
  });

  it("crash - the ingress killed (-9) under traffic and restarted: what it answered 200 is kept, QuickBooks retries the rest", {
    timeout: 120_000,
  }, async () => {
    const traffic = runningTraffic(900, 13);
    await untilDelivered(5);
    const failedBefore = failedDeliveries();
    await service("ingress").signal("SIGKILL");
    expect(traffic.running()).toBe(true);
    await traffic.done;
    // QuickBooks found the endpoint down: the kill fell among deliveries.
    expect(failedDeliveries()).toBeGreaterThan(failedBefore);
    await service("ingress").restart();
    // QuickBooks' first retry of a failed delivery comes 10 s later (current policy), then 20 s, 30 s.
    await expectExactEverywhere(90_000);
  });

  it("crash - nats-server killed (-9) and restarted: nothing lost", { timeout: 120_000 }, async () => {
    await pipeline.traffic(90, 10);
    await pipeline.nats.kill();
    await new Promise((resolve) => setTimeout(resolve, 500));
    await pipeline.nats.restart();
    await pipeline.traffic(90, 11);
    // Acks the killed server had not written down come back after the ack wait (60 s): allow for it.
    await expectExactEverywhere(100_000);
  });
});
