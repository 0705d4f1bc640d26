import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { AppliedChange, Streams, Subjects } from "@qbo-webhooks/contracts";
import type { Company } from "@qbo-webhooks/sandbox";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type AppReceiver, startAppReceiver } from "./testing/app-receiver.js";
import { type Pipeline, startPipeline } from "./testing/pipeline-harness.js";

const MAIN = fileURLToPath(new URL("../dist/processor.mjs", import.meta.url));
const FAULTY = fileURLToPath(new URL("../dist/testing/fault-processor.js", import.meta.url));

// The feed-before-copy rule, proven on processes: a processor killed (-9) between a change's
// publication and its recording, and one whose PubAcks are lost, leave every change in the feed
// and at the app exactly once, in version order. In-process failures are feed-before-copy.test.ts.
describe("processor processes failing between publishing and recording", () => {
  let pipeline: Pipeline;
  let app: AppReceiver;
  const children: ChildProcess[] = [];
  const spawnProcessor = (id: string, fault?: Record<string, string>) => {
    const child = spawn(process.execPath, [fault ? FAULTY : MAIN], {
      env: { PATH: process.env.PATH ?? "", ...pipeline.processorEnv(id, app.url), ...fault },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    const output: string[] = [];
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on("line", (line) => output.push(line));
    }
    return { child, output };
  };
  const stop = async (child: ChildProcess, signal: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill(signal);
    await exited;
  };
  const lastInFeed = async (realmId: string, entity: string) => {
    const stored = await pipeline.reader.jsm.streams.getMessage(Streams.changes.name, {
      last_by_subj: Subjects.changes(realmId, entity),
    });
    return stored ? AppliedChange.parse(stored.json()) : undefined;
  };
  /** Our copy, the feed and the app all end equal to QuickBooks, each version once and in order. */
  const expectExactEverywhere = () =>
    expect.poll(() => pipeline.outputs(app), { timeout: 60_000, interval: 1000 }).toEqual(pipeline.exactOutputs(app));

  beforeAll(async () => {
    pipeline = await startPipeline({ processes: true });
    app = await startAppReceiver();
  });
  afterEach(async () => {
    for (const child of children.splice(0)) await stop(child, "SIGKILL");
  });
  afterAll(async () => {
    await app?.close();
    await pipeline?.close();
  });

  it("fault - a processor killed (-9) after publishing and before recording: the next one records it, the feed and the app get it once (a Create, then a Delete)", {
    timeout: 120_000,
  }, async () => {
    const [company] = pipeline.realms as [Company];
    const customer = company.create("Customer");
    const steps = [
      { operation: "Create", inCopyDuringWindow: false, act: () => undefined },
      { operation: "Delete", inCopyDuringWindow: true, act: () => company.delete("Customer", customer.Id) },
    ];
    for (const [index, step] of steps.entries()) {
      step.act();
      const held = spawnProcessor(`held-${index}`, { FAULT: "hold", HOLD_MS: "60000" });
      await expect.poll(() => held.output.some((line) => line.includes("holding")), { timeout: 30_000 }).toBe(true);
      // Inside the window: the feed has the change, our copy does not say it is applied yet.
      expect((await lastInFeed(company.realmId, "Customer"))?.operation).toBe(step.operation);
      const inCopy = (await pipeline.copy())[company.realmId]?.[`Customer/${customer.Id}`] !== undefined;
      expect(inCopy).toBe(step.inCopyDuringWindow);
      await stop(held.child, "SIGKILL");

      const next = spawnProcessor(`next-${index}`);
      await expectExactEverywhere();
      await stop(next.child, "SIGTERM");
      expect(next.child.exitCode).toBe(0);
    }
    expect(pipeline.truth()[company.realmId]?.[`Customer/${customer.Id}`]).toBeUndefined();
  });

  it("fault - every PubAck lost once under traffic: each change is retried, stored once in the feed and delivered once", {
    timeout: 120_000,
  }, async () => {
    const faulty = spawnProcessor("lossy", { FAULT: "pubacks-lost" });
    await pipeline.traffic(120, 41);
    await expectExactEverywhere();
    expect(faulty.output.some((line) => line.includes("PUBLISH_TIMEOUT"))).toBe(true);
    await stop(faulty.child, "SIGTERM");
    expect(faulty.child.exitCode).toBe(0);
  });
});
