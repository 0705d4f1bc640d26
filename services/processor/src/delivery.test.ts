import { AppliedChange, Buckets, Headers, Streams, Subjects } from "@qbo-webhooks/contracts";
import { directGetsDuring } from "@qbo-webhooks/messaging/testing";
import { seededRandom } from "@qbo-webhooks/sandbox";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type ProcessorService, startProcessor } from "./processor-service.js";
import { type AppReceiver, startAppReceiver } from "./testing/app-receiver.js";
import { logger, type Pipeline, startPipeline } from "./testing/pipeline-harness.js";

// What the app receives is the guarantee here: checked at a receiver that verifies signatures and
// deduplicates by webhook-id, against QuickBooks' own state, not against our internal copy.
describe("delivery to the app: per realm, in order, under the partition leases", () => {
  let pipeline: Pipeline;
  let app: AppReceiver;
  const processors: ProcessorService[] = [];
  const startReplica = async (id: string, retryForMs?: number) => {
    const config = pipeline.processorConfig(id, "cdc", {
      url: app.url,
      ...(retryForMs === undefined ? {} : { retryForMs }),
    });
    const processor = await startProcessor(config, logger);
    processors.push(processor);
    return processor;
  };

  // A pipeline and an app each: what an app received is judged from its first delivery on.
  beforeEach(async () => {
    pipeline = await startPipeline();
  });
  afterEach(async () => {
    for (const processor of processors.splice(0)) await processor.close();
    await app?.close();
    await pipeline?.close();
  });

  it("delivery - an app that refuses 30% of POSTs and is down for 5 s still gets every change: versions in order, realm sequences without holes, its copy exact", {
    timeout: 120_000,
  }, async () => {
    app = await startAppReceiver();
    const random = seededRandom(30);
    let down = false;
    app.answer(() => (down || random() < 0.3 ? 500 : 200));
    await startReplica("d1");
    await startReplica("d2");
    await pipeline.traffic(150, 31);
    down = true;
    await pipeline.traffic(90, 32);
    await new Promise((resolve) => setTimeout(resolve, 5000));
    down = false;
    await pipeline.traffic(60, 33);
    const expected = pipeline.truth();
    await expect.poll(() => app.copy(), { timeout: 60_000, interval: 500 }).toEqual(expected);
    expect(await pipeline.feedCopy()).toEqual(expected);
    expect(await pipeline.copy()).toEqual(expected);
    expect(app.problems).toEqual([]);
    expect(app.badSignatures).toBe(0);
    // Refusals happened, and each was retried rather than lost.
    expect(app.posts).toBeGreaterThan(app.accepted.length);
  });

  it("delivery - a replica reads a realm's cursor once while it holds the partition, then moves it over its own last write", {
    timeout: 120_000,
  }, async () => {
    app = await startAppReceiver();
    const reads = await directGetsDuring(pipeline.reader, Buckets.deliveryCursors, async () => {
      await startReplica("d1");
      await pipeline.traffic(60, 41);
      const expected = pipeline.truth();
      await expect.poll(() => app.copy(), { timeout: 60_000, interval: 500 }).toEqual(expected);
    });
    expect(app.accepted.length).toBeGreaterThanOrEqual(30);
    expect(reads).toBeLessThanOrEqual(pipeline.realms.length);
  });

  it("delivery - a realm whose endpoint keeps refusing blocks only itself; once taken, its changes arrive in order", {
    timeout: 120_000,
  }, async () => {
    app = await startAppReceiver();
    const [blocked, ...others] = pipeline.realms.map((r) => r.realmId);
    let refusing = true;
    app.answer((change) => (refusing && change.realmId === blocked ? 503 : 200));
    const replica = await startReplica("d3");
    await pipeline.traffic(150, 34);
    const expected = pipeline.truth();
    const othersOf = (copy: Record<string, Record<string, string>>) =>
      Object.fromEntries(others.map((realmId) => [realmId, copy[realmId]]));
    await expect.poll(() => othersOf(app.copy()), { timeout: 60_000, interval: 500 }).toEqual(othersOf(expected));
    expect(app.accepted.filter((c) => c.realmId === blocked)).toEqual([]);
    expect(await gauge(replica, "qbo_delivery_blocked_realms")).toBe(1);
    refusing = false;
    await expect.poll(() => app.copy(), { timeout: 60_000, interval: 500 }).toEqual(pipeline.truth());
    expect(app.problems).toEqual([]);
  });

  it("delivery - a change refused past its retry period is dead-lettered and the realm moves on (its sequence jumps); a replay delivers it with its webhook-id, never over a newer version", {
    timeout: 120_000,
  }, async () => {
    app = await startAppReceiver();
    let refusing = true;
    app.answer(() => (refusing ? 503 : 200));
    await startReplica("d4", 1500);
    const before = (await pipeline.reader.jsm.streams.info(Streams.dlq.name)).state.last_seq;
    await pipeline.traffic(60, 35);
    await expect.poll(async () => (await deliveryLetters(before)).length, { timeout: 30_000 }).toBeGreaterThan(5);
    refusing = false;
    await pipeline.traffic(60, 36);
    await expect.poll(() => app.accepted.length, { timeout: 30_000 }).toBeGreaterThan(0);
    // Whatever was dead-lettered shows to the app as a jump in its realm's sequence.
    await expect.poll(() => app.problems.some((p) => /jumped/.test(p)), { timeout: 30_000 }).toBe(true);

    // Replayed as a user would: `qbo-webhooks dlq replay`, a process of its own.
    const letters = await deliveryLetters(before);
    const replay = await pipeline.cli({}, "dlq", "replay", "--all", "--stage", "delivery", "--json");
    expect(replay).toMatchObject({ code: 0 });
    expect(JSON.parse(replay.stdout)).toHaveLength(letters.length);
    await expect.poll(() => app.copy(), { timeout: 60_000, interval: 500 }).toEqual(pipeline.truth());
    // Replays repeat old sequence numbers (the app can tell them by that); no version ever went backwards.
    expect(app.problems.filter((p) => !/jumped|sequence \d+ after/.test(p))).toEqual([]);
    // Each letter reached the app under its own webhook-id, unless a newer version of its entity had by then.
    for (const letter of letters) {
      const change = AppliedChange.parse(letter.json());
      const newer = app.accepted.some(
        (c) =>
          c.realmId === change.realmId &&
          c.entity === change.entity &&
          c.id === change.id &&
          Number(c.version?.syncToken ?? Number.POSITIVE_INFINITY) > Number(change.version?.syncToken ?? -1),
      );
      expect(app.took(letter.header.get(Headers.webhookId)) || newer, `letter ${letter.seq}`).toBe(true);
    }
    expect((await pipeline.cli({}, "dlq", "list", "--stage", "delivery")).stdout.trim()).toBe("no dead letters");
  });

  async function deliveryLetters(after: number) {
    const info = await pipeline.reader.jsm.streams.info(Streams.dlq.name);
    const letters = [];
    for (let seq = after + 1; seq <= info.state.last_seq; seq++) {
      const msg = await pipeline.reader.jsm.streams.getMessage(Streams.dlq.name, { seq }).catch(() => null);
      if (msg?.subject === Subjects.dlq("delivery")) letters.push(msg);
    }
    return letters;
  }
});

async function gauge(processor: ProcessorService, name: string): Promise<number | undefined> {
  return (await processor.registry.getSingleMetric(name)?.get())?.values[0]?.value;
}
