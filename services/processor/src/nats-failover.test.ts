import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Streams, signIntuitPayload } from "@qbo-webhooks/contracts";
import { sampleCloudEventBody } from "@qbo-webhooks/contracts/testing";
import type { NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type AppReceiver, startAppReceiver } from "./testing/app-receiver.js";
import { PARTITIONS, type Pipeline, startPipeline } from "./testing/pipeline-harness.js";

const MAIN = fileURLToPath(new URL("../dist/processor.mjs", import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// A 3-node nats-server cluster on loopback (R3 streams and buckets, fsync before every PubAck), a
// processor process delivering to an app, and QuickBooks sending about 200 notifications a second.
// No reconciler runs, so a notification acknowledged and then lost would stay lost: the copy, the
// feed and the app would miss its change.
describe("NATS cluster failover", () => {
  let pipeline: Pipeline;
  let app: AppReceiver;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    pipeline = await startPipeline({ cluster: 3, realms: 4, processes: true });
    app = await startAppReceiver();
    const child = spawn(process.execPath, [MAIN], {
      env: { PATH: process.env.PATH ?? "", ...pipeline.processorEnv("failover", app.url) },
      stdio: ["ignore", "ignore", "inherit"],
    });
    children.push(child);
    // Started: it consumes every partition (a processor starting during a failover exits to be restarted).
    await vi.waitFor(
      async () => {
        let consumers = 0;
        for await (const _ of pipeline.reader.jsm.consumers.list(Streams.events.name)) consumers++;
        expect(consumers).toBe(PARTITIONS);
      },
      { timeout: 30_000, interval: 500 },
    );
  }, 60_000);
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await app?.close();
    await pipeline?.close();
  });

  const leaderOf = async (stream: string): Promise<NatsServerProcess> => {
    const name = (await pipeline.reader.jsm.streams.info(stream)).cluster?.leader;
    const node = pipeline.natsNodes.find((n) => n.name === name);
    if (!node) throw new Error(`${stream} has no leader among the nodes (${name})`);
    return node;
  };
  /**
   * Posts a signed notification straight to the ingress and answers the status. Each is new to the
   * ingress (a fresh event id) but older than the realm's first one, so ordering drops it as stale.
   */
  const probe = async (time = "2026-01-01T00:00:00Z"): Promise<number> => {
    const body = sampleCloudEventBody(1, { realmId: "9999999999", time });
    const response = await fetch(`http://127.0.0.1:${pipeline.ingress.port}/webhooks/quickbooks`, {
      method: "POST",
      headers: {
        "intuit-signature": signIntuitPayload(body, pipeline.verifierToken),
        "content-type": "application/json",
      },
      body,
    });
    return response.status;
  };

  it("failover - the stream leader killed (-9) under load: nothing acknowledged goes missing, intake resumes within 10 s, and no quorum means 503", {
    timeout: 300_000,
  }, async () => {
    const traffic = pipeline.steppedTraffic(41);
    expect(await probe("2026-06-01T00:00:00Z")).toBe(200);
    const started = performance.now();
    // QuickBooks sends one notification at a time (its ordered queue, which waits 10 s after a
    // failure), so the load on the ingress comes from 32 clients posting as fast as it answers.
    const probes: { at: number; status: number }[] = [];
    // Probing goes on 14 s after the kill (at 4 s): a resumption just inside the 10 s allowed is
    // still followed by seconds of stored notifications to see.
    const PROBING_MS = 18_000;
    const probing = Promise.all(
      Array.from({ length: 32 }, async () => {
        while (performance.now() - started < PROBING_MS) {
          const at = performance.now();
          probes.push({ at, status: await probe() });
        }
      }),
    );
    let killedAt: number | undefined;
    let killed: NatsServerProcess | undefined;
    while (performance.now() - started < 12_000) {
      traffic.step(5);
      if (killedAt === undefined && performance.now() - started > 4000) {
        killed = await leaderOf(Streams.webhooks.name);
        killedAt = performance.now();
        await killed.kill();
      }
      await sleep(100);
    }
    if (!killed || killedAt === undefined) throw new Error("the leader was never killed");
    await probing;
    const rate = probes.length / (PROBING_MS / 1000);
    expect(rate, "notifications a second").toBeGreaterThanOrEqual(200);
    // Intake resumed within 10 s: from then on every probe was stored.
    const lastRefused = probes.filter((p) => p.status !== 200).at(-1)?.at ?? killedAt;
    expect(lastRefused - killedAt, "ms from the kill to the last refusal").toBeLessThan(10_000);
    expect(probes.filter((p) => p.at > lastRefused).length).toBeGreaterThan(5);
    expect(probes.every((p) => p.status === 200 || p.status === 503)).toBe(true);
    await killed.restart();

    // Two of three nodes gone: no quorum, so nothing can be stored and the ingress must say so.
    const [survivor, ...lost] = pipeline.natsNodes;
    if (!survivor) throw new Error("no nodes");
    const quorumLostAt = pipeline.sandbox.clock.now();
    await Promise.all(lost.map((node) => node.kill()));
    const asked = performance.now();
    expect(await probe()).toBe(503);
    expect(performance.now() - asked).toBeLessThan(3000);
    for (let i = 0; i < 10; i++) {
      traffic.step(3);
      await sleep(300);
    }
    const quorumBackAt = pipeline.sandbox.clock.now();
    expect(
      pipeline.sandbox
        .deliveries("app")
        .attempts.filter((a) => a.ok && a.at > quorumLostAt + 500 && a.at < quorumBackAt),
      "acknowledged without a quorum",
    ).toEqual([]);
    await Promise.all(lost.map((node) => node.restart()));

    // QuickBooks retries what was refused (10 s, 20 s, 30 s, …); everything ends at the app in order.
    await expect
      .poll(() => pipeline.outputs(app), { timeout: 180_000, interval: 1000 })
      .toEqual(pipeline.exactOutputs(app));
  });
});
