import type { Company } from "@qbo-webhooks/sandbox";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ProcessorService, startProcessor } from "./processor-service.js";
import { type AppReceiver, startAppReceiver } from "./testing/app-receiver.js";
import { type ListedLetter, logger, type Pipeline, startPipeline } from "./testing/pipeline-harness.js";

// A dead letter is a promise to the operator: fix the cause, replay, and the change arrives. Proven
// where users see it, from `qbo-webhooks dlq replay` (a process) to the feed and the app's copy.
describe("processor dead letters replayed once the cause is fixed", () => {
  let pipeline: Pipeline;
  let app: AppReceiver;
  let processor: ProcessorService;
  beforeAll(async () => {
    pipeline = await startPipeline({ realms: 2 });
    app = await startAppReceiver();
    processor = await startProcessor(pipeline.processorConfig("r1", "cdc", { url: app.url }), logger);
  });
  afterAll(async () => {
    await processor?.close();
    await app?.close();
    await pipeline?.close();
  });

  it("dlq replay - a revoked company's events, dead-lettered, reach our copy, the feed and the app once it is connected again and they are replayed", {
    timeout: 90_000,
  }, async () => {
    const [open, revoked] = pipeline.realms as [Company, Company];
    pipeline.sandbox.oauth.revokeCompany("app", revoked.realmId);
    const customers = [revoked.create("Customer"), revoked.create("Customer"), revoked.create("Customer")];
    const vendor = open.create("Vendor");
    await expect.poll(() => app.copy()[open.realmId]?.[`Vendor/${vendor.Id}`], { timeout: 20_000 }).toBe("0");

    // Each customer's event dead-lettered (one letter each), and no more coming: the count holds for 3 s.
    let letters: ListedLetter[] = [];
    await expect
      .poll(
        async () => {
          const before = letters.length;
          letters = await pipeline.deadLetters("processor");
          return letters.length >= customers.length && letters.length === before;
        },
        { timeout: 40_000, interval: 3000 },
      )
      .toBe(true);
    expect(letters.every((l) => /QBO_UNAUTHORIZED/.test(l.reason))).toBe(true);
    expect(app.copy()[revoked.realmId]).toBeUndefined();
    expect((await pipeline.copy())[revoked.realmId]).toBeUndefined();

    await pipeline.connect(revoked.realmId);
    const replay = await pipeline.cli({}, "dlq", "replay", "--all", "--json");
    expect(replay).toMatchObject({ code: 0 });
    expect(JSON.parse(replay.stdout)).toHaveLength(letters.length);

    const expected = pipeline.truth();
    await expect.poll(pipeline.copy, { timeout: 30_000, interval: 500 }).toEqual(expected);
    await expect.poll(() => app.copy(), { timeout: 30_000, interval: 500 }).toEqual(expected);
    expect(await pipeline.feedCopy()).toEqual(expected);
    expect(app.problems).toEqual([]);
    expect((await pipeline.cli({}, "dlq", "list")).stdout.trim()).toBe("no dead letters");
  });
});
