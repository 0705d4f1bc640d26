import { Buckets, DLQ_STAGES, Subjects } from "@qbo-webhooks/contracts";
import { RealmRegistry } from "@qbo-webhooks/entity-store";
import { kvKey, openBucket } from "@qbo-webhooks/messaging";
import { type ProcessorService, startProcessor } from "@qbo-webhooks/processor/service";
import { logger, type Pipeline, startPipeline } from "@qbo-webhooks/processor/testing";
import type { Company } from "@qbo-webhooks/sandbox";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ReconcilerService, startReconciler } from "./reconciler-service.js";
import {
  connectThroughConsent,
  consent,
  counter,
  differences,
  reconcilerConfig,
} from "./testing/reconciler-harness.js";

const HOUR = 3600_000;

describe("reconciler against the sandbox (legacy delivery policy)", () => {
  let pipeline: Pipeline;
  let processor: ProcessorService;
  const reconcilers: ReconcilerService[] = [];
  let realms: RealmRegistry;
  const leader = () => reconcilers.find((r) => r.isLeader()) as ReconcilerService;
  const follower = () => reconcilers.find((r) => !r.isLeader()) as ReconcilerService;
  /** Over every replica: whoever led when a change was found counted it. */
  const missedInCluster = async () =>
    (await Promise.all(reconcilers.map((r) => counter(r, "qbo_cdc_missed_events_total")))).reduce((a, b) => a + b, 0);

  beforeAll(async () => {
    pipeline = await startPipeline({ realms: 3, policy: "legacy" });
    processor = await startProcessor(pipeline.processorConfig("proc"), logger);
    for (const id of ["rec-a", "rec-b"]) {
      reconcilers.push(
        await startReconciler(reconcilerConfig(pipeline, id), logger, { now: () => pipeline.sandbox.clock.now() }),
      );
    }
    realms = new RealmRegistry(await openBucket(pipeline.reader, Buckets.realms, { replicas: 1 }));
  });
  afterAll(async () => {
    for (const r of reconcilers) await r.close();
    await processor?.close();
    await pipeline?.close();
  });

  it("connect - /connect through consent to /oauth/callback stores tokens and registers the realm; a full resync copies what exists", async () => {
    // Entities made before the company connected: no webhook will ever announce them.
    for (const company of pipeline.realms) company.create("Customer");
    const [first, second] = reconcilers as [ReconcilerService, ReconcilerService];
    for (const company of pipeline.realms) {
      // Started on one replica, back through the other: the flows are shared through KV.
      const answer = await consent(first, `realmId=${company.realmId}`, ({ url, cookie }) => {
        url.port = String(second.port);
        return { url, cookie };
      });
      expect(answer.status).toBe(200);
      expect(await answer.json()).toMatchObject({ realmId: company.realmId, status: "connected" });
    }
    expect((await realms.list()).map((r) => `${r.realmId}:${r.status}`)).toEqual(
      pipeline.realms.map((c) => `${c.realmId}:connected`),
    );
    // The connect asked for a CDC: for a new realm, a full resync.
    await expect
      .poll(
        async () =>
          (await realms.list()).every((r) => r.cdcRequestedAt === undefined && r.lastCdcResult === "succeeded"),
        {
          timeout: 20_000,
        },
      )
      .toBe(true);
    await expect.poll(pipeline.copy, { timeout: 20_000, interval: 300 }).toEqual(pipeline.truth());
  });

  it("connect - a callback without a state we issued is refused", async () => {
    const answer = await fetch(
      `http://127.0.0.1:${reconcilers[0]?.port}/oauth/callback?code=x&realmId=1&state=forged.mac`,
    );
    expect(answer.status).toBe(400);
  });

  it("cdc - notifications dropped by QuickBooks are found by CDC; the missed count equals what was lost", {
    timeout: 60_000,
  }, async () => {
    pipeline.sandbox.setWebhookFaults("app", [{ kind: "drop", percent: 20 }]);
    const missedBefore = await missedInCluster();
    await pipeline.traffic(300, 11);
    // Let what was delivered settle; the entities our copy then has wrong are what QuickBooks did not
    // tell us. (CDC leaves changes younger than MISSED_GRACE_MS alone, so it cannot have fixed any yet.)
    let previous = "";
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const now = JSON.stringify(await pipeline.copy());
      if (now === previous) break;
      previous = now;
    }
    const lost = differences(pipeline.truth(), await pipeline.copy());
    expect(lost).toBeGreaterThan(0);
    pipeline.sandbox.setWebhookFaults("app", []);
    // The webhooks have gone silent; past SILENCE_MS of QuickBooks time the leader catches up by CDC.
    await pipeline.sandbox.clock.advance(20 * 60_000);
    await expect.poll(pipeline.copy, { timeout: 30_000, interval: 300 }).toEqual(pipeline.truth());
    expect((await missedInCluster()) - missedBefore).toBe(lost);
  });

  it("legacy policy - an ingress outage gets the endpoint blacklisted; CDC still brings the copy to QuickBooks' state and counts every change it lost", {
    timeout: 60_000,
  }, async () => {
    const missedBefore = await missedInCluster();
    await pipeline.stopIngress();
    try {
      await pipeline.traffic(120, 13);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      // Nothing reaches us now: every change made during the outage is lost unless CDC finds it.
      const lost = differences(pipeline.truth(), await pipeline.copy());
      expect(lost).toBeGreaterThan(0);
      // QuickBooks retries at +20, +30 and +50 minutes, then drops the notifications and blacklists us.
      for (let minutes = 0; minutes < 120; minutes += 10) {
        await pipeline.sandbox.clock.advance(10 * 60_000);
        await new Promise((resolve) => setTimeout(resolve, 100)); // the refused POSTs, in real time
      }
      expect(pipeline.sandbox.deliveries("app").blacklisted).toBe(true);
      await expect.poll(pipeline.copy, { timeout: 30_000, interval: 300 }).toEqual(pipeline.truth());
      expect((await missedInCluster()) - missedBefore).toBe(lost);
    } finally {
      await pipeline.restoreIngress();
      pipeline.sandbox.webhooks("app").reenable();
    }
  });

  it("leader - exactly one replica leads, and only it refreshes tokens", async () => {
    await expect.poll(() => reconcilers.filter((r) => r.isLeader()).length, { timeout: 10_000 }).toBe(1);
    // Twelve hours of QuickBooks time, an hour at a time: each step expires every access token.
    for (let step = 0; step < 12; step++) {
      await pipeline.sandbox.clock.advance(HOUR);
      await expect
        .poll(
          async () =>
            (await realms.list()).every(
              (r) => (r.accessTokenExpiresAt ?? 0) > pipeline.sandbox.clock.now() + 15 * 60_000,
            ),
          {
            timeout: 10_000,
          },
        )
        .toBe(true);
    }
    expect(await counter(leader(), "qbo_token_refreshes_total", { result: "refreshed" })).toBeGreaterThanOrEqual(12);
    expect(await counter(follower(), "qbo_token_refreshes_total")).toBe(0);
    expect(await counter(leader(), "qbo_token_refreshes_total", { result: "refused" })).toBe(0);
    // The rotated tokens still work: a change after all those refreshes reaches our copy.
    const [company] = pipeline.realms as [Company];
    company.create("Vendor");
    await expect.poll(pipeline.copy, { timeout: 20_000, interval: 300 }).toEqual(pipeline.truth());
  });

  it("cdc - a realm's CDC asked for by hand (the CLI's way) takes every change up to now, however young, and records what it did", async () => {
    const [company] = pipeline.realms as [Company];
    await expect.poll(pipeline.copy, { timeout: 20_000, interval: 300 }).toEqual(pipeline.truth());
    const before = (await realms.get(company.realmId))?.lastCdcAt ?? 0;
    // Changes of a second ago whose webhooks never come: far younger than MISSED_GRACE_MS (5 min here).
    pipeline.sandbox.setWebhookFaults("app", [{ kind: "drop", percent: 100 }]);
    company.create("Vendor");
    company.create("Vendor");
    pipeline.sandbox.setWebhookFaults("app", []);
    await realms.update(company.realmId, (r) => r && { ...r, cdcRequestedAt: pipeline.sandbox.clock.now() });
    await expect
      .poll(
        async () => {
          const record = await realms.get(company.realmId);
          return record?.cdcRequestedAt === undefined && (record?.lastCdcAt ?? 0) > before;
        },
        { timeout: 10_000 },
      )
      .toBe(true);
    await expect.poll(pipeline.copy, { timeout: 10_000, interval: 300 }).toEqual(pipeline.truth());
    // Young enough that their webhooks might still come: published, not counted as missed.
    expect((await realms.get(company.realmId))?.lastCdcSummary).toMatchObject({
      kind: "requested",
      published: 2,
      missed: 0,
      deferred: 0,
    });
  });

  it("cdc - a realm that usually sends webhooks every few seconds is caught up after minutes of silence, before SILENCE_MS", async () => {
    const [company] = pipeline.realms as [Company];
    for (let i = 0; i < 12; i++) {
      company.create("Vendor");
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    await expect.poll(pipeline.copy, { timeout: 20_000, interval: 300 }).toEqual(pipeline.truth());
    const before = (await realms.get(company.realmId))?.lastCdcAt ?? 0;
    // Three minutes without a webhook: far past this realm's rhythm, far short of SILENCE_MS (15 min).
    await pipeline.sandbox.clock.advance(3 * 60_000);
    await expect
      .poll(async () => (await realms.get(company.realmId))?.lastCdcAt ?? 0, { timeout: 10_000 })
      .toBeGreaterThan(before);
  });

  it("daily - the daily CDC repairs a copy damaged outside the pipeline", async () => {
    const entities = await openBucket(pipeline.reader, Buckets.entities, { replicas: 1 });
    const [first, second] = pipeline.realms as [Company, Company];
    const victim = first.create("Customer");
    const altered = second.create("Vendor");
    await expect.poll(pipeline.copy, { timeout: 20_000, interval: 300 }).toEqual(pipeline.truth());
    await entities.delete(kvKey(first.realmId, "Customer", victim.Id));
    const key = kvKey(second.realmId, "Vendor", altered.Id);
    const stored = (await entities.get(key))?.json<Record<string, unknown>>() ?? {};
    await entities.put(key, JSON.stringify({ ...stored, DisplayName: "tampered", SyncToken: "7" }));
    expect(await pipeline.copy()).not.toEqual(pipeline.truth());
    const repairsBefore = await counter(leader(), "qbo_cdc_repairs_total");
    await pipeline.sandbox.clock.advance(25 * HOUR);
    await expect.poll(pipeline.copy, { timeout: 30_000, interval: 300 }).toEqual(pipeline.truth());
    expect((await entities.get(key))?.json<Record<string, unknown>>()).toEqual(second.snapshot().Vendor?.[altered.Id]);
    expect((await counter(leader(), "qbo_cdc_repairs_total")) - repairsBefore).toBeGreaterThanOrEqual(2);
  });

  it("daily - repairs a damaged copy also when the change recorded for it came by another id in the same second", async () => {
    const [, second] = pipeline.realms as [Company, Company];
    const altered = second.create("Vendor");
    await expect.poll(pipeline.copy, { timeout: 20_000, interval: 300 }).toEqual(pipeline.truth());
    // A CloudEvents webhook's id, not the id a CDC finding derives: the daily run judges its own finding
    // newer (same second, another id), and as a plain change the processor would find it no newer than
    // the damaged copy and leave it.
    const lastUpdated = String(second.snapshot().Vendor?.[altered.Id]?.MetaData?.LastUpdatedTime);
    const versions = await openBucket(pipeline.reader, Buckets.entityVersions, { replicas: 1 });
    await versions.put(
      kvKey(second.realmId, "Vendor", altered.Id),
      JSON.stringify({ at: Date.parse(lastUpdated), eventId: "cloudevent-id" }),
    );
    const entities = await openBucket(pipeline.reader, Buckets.entities, { replicas: 1 });
    const key = kvKey(second.realmId, "Vendor", altered.Id);
    const stored = (await entities.get(key))?.json<Record<string, unknown>>() ?? {};
    await entities.put(key, JSON.stringify({ ...stored, DisplayName: "tampered", SyncToken: "7" }));
    await pipeline.sandbox.clock.advance(25 * HOUR);
    await expect.poll(pipeline.copy, { timeout: 20_000, interval: 300 }).toEqual(pipeline.truth());
    expect((await entities.get(key))?.json<Record<string, unknown>>()).toEqual(second.snapshot().Vendor?.[altered.Id]);
  });

  it("tokens - a revoked realm is marked disconnected with the reason; the others go on", async () => {
    const [kept, , revoked] = pipeline.realms as [Company, Company, Company];
    pipeline.sandbox.oauth.revokeCompany("app", revoked.realmId);
    await pipeline.sandbox.clock.advance(HOUR);
    await expect
      .poll(async () => (await realms.get(revoked.realmId))?.status, { timeout: 10_000 })
      .toBe("disconnected");
    expect((await realms.get(revoked.realmId))?.statusReason).toMatch(/refused/);
    expect((await realms.get(kept.realmId))?.status).toBe("connected");
    const vendor = kept.create("Vendor");
    await expect
      .poll(async () => (await pipeline.copy())[kept.realmId]?.[`Vendor/${vendor.Id}`], { timeout: 20_000 })
      .toBe("0");
  });

  it("metrics - dead letters are counted by the stage that wrote them", async () => {
    const delivery = async () =>
      Number(
        /qbo_dlq_messages\{stage="delivery"[^}]*\} (\d+)/.exec(await leader().registry.metrics())?.[1] ?? Number.NaN,
      );
    await expect.poll(delivery, { timeout: 5000 }).not.toBeNaN();
    const before = await delivery();
    await pipeline.reader.js.publish(Subjects.dlq("delivery"), "a dead letter");
    await expect.poll(delivery, { timeout: 5000 }).toBe(before + 1);
  });

  it("metrics - backlog, dead letters, CDC lag and realms by status are published", async () => {
    // Gauges follow the loop's next pass.
    await expect
      .poll(() => leader().registry.metrics(), { timeout: 5000 })
      .toMatch(/qbo_realms\{status="disconnected"[^}]*\} 1/);
    const text = await leader().registry.metrics();
    expect(text).toMatch(/qbo_consumer_pending\{stream="QBO_WEBHOOKS",consumer="ordering"[^}]*\} \d+/);
    expect(text).toMatch(/qbo_consumer_pending\{stream="QBO_EVENTS",consumer="processor-p0"[^}]*\} \d+/);
    for (const stage of DLQ_STAGES)
      expect(text).toMatch(new RegExp(`qbo_dlq_messages\\{stage="${stage}"[^}]*\\} \\d+`));
    expect(text).toMatch(/qbo_stream_oldest_unprocessed_seconds\{stream="QBO_EVENTS"[^}]*\} [\d.e+-]+/);
    expect(text).toMatch(/qbo_stream_fill_ratio\{stream="QBO_CHANGES"[^}]*\} [\d.e+-]+/);
    expect(text).toMatch(/qbo_cdc_lag_seconds(\{[^}]*\})? \d+/);
    expect(text).toMatch(/qbo_realms\{status="disconnected"[^}]*\} 1/);
    expect(text).toMatch(/qbo_cdc_runs_total\{result="succeeded"[^}]*\} [1-9]/);
  });

  it("tokens - a disconnected realm that connects again resumes from its watermarks and catches up", {
    timeout: 60_000,
  }, async () => {
    const [, , revoked] = pipeline.realms as [Company, Company, Company];
    expect((await realms.get(revoked.realmId))?.status).toBe("disconnected");
    // While it was disconnected the company kept changing; those events could not be applied.
    revoked.create("Customer");
    revoked.create("Invoice");
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await pipeline.copy()).not.toEqual(pipeline.truth());
    await connectThroughConsent(pipeline, leader());
    expect((await realms.get(revoked.realmId))?.status).toBe("connected");
    await expect.poll(pipeline.copy, { timeout: 30_000, interval: 300 }).toEqual(pipeline.truth());
    const record = await realms.get(revoked.realmId);
    expect(record?.statusReason).toBeUndefined();
    expect(record?.lastCdcResult).toBe("succeeded");
  });

  it("cdc - pages through QuickBooks' 1,000-object cap: 1,100 unannounced changes of one type in one realm", {
    timeout: 60_000,
  }, async () => {
    const [company] = pipeline.realms as [Company];
    pipeline.sandbox.setWebhookFaults("app", [{ kind: "drop", percent: 100 }]);
    for (let i = 0; i < 1100; i++) company.create("Customer");
    pipeline.sandbox.setWebhookFaults("app", []);
    // Old enough that no webhook could still be on its way; then a CDC as the CLI asks for one.
    await pipeline.sandbox.clock.advance(10 * 60_000);
    await realms.update(company.realmId, (r) => r && { ...r, cdcRequestedAt: pipeline.sandbox.clock.now() });
    await expect.poll(pipeline.copy, { timeout: 45_000, interval: 500 }).toEqual(pipeline.truth());
  });
});
