import { AppliedChange, Streams, Subjects } from "@qbo-webhooks/contracts";
import type { Company } from "@qbo-webhooks/sandbox";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { changeMsgId } from "./change-outputs.js";
import { type ProcessorService, startProcessor } from "./processor-service.js";
import type { ProcessorHooks } from "./realm-batch.js";
import { logger, type Pipeline, startPipeline } from "./testing/pipeline-harness.js";

// The feed and the deliveries are what apps consume: a change must be there before our copy says
// it is applied, or a failure in between leaves it out of the feed for good (the retry finds the
// copy up to date and publishes nothing, and CDC finds nothing to repair).
describe("processor: the feed before the copy", () => {
  let pipeline: Pipeline;
  let processor: ProcessorService | undefined;
  beforeAll(async () => {
    pipeline = await startPipeline();
  });
  afterAll(async () => {
    await processor?.close();
    await pipeline?.close();
  });

  it("apply - a failure after publishing and before recording leaves the change in the feed, and the retry records it (a Delete too)", {
    timeout: 60_000,
  }, async () => {
    const [company] = pipeline.realms as [Company];
    const failures: { change: AppliedChange; inFeed: boolean; inCopy: boolean }[] = [];
    const hooks: ProcessorHooks = {
      batchStarted: () => undefined,
      batchEnded: () => undefined,
      // Each change fails once at the worst moment: stored in the feed, not yet in our copy.
      published: async (change) => {
        if (failures.some((f) => changeMsgId(f.change) === changeMsgId(change))) return;
        const stored = await pipeline.reader.jsm.streams.getMessage(Streams.changes.name, {
          last_by_subj: Subjects.changes(change.realmId, change.entity),
        });
        const inFeed = stored !== null && changeMsgId(AppliedChange.parse(stored.json())) === changeMsgId(change);
        const inCopy = (await pipeline.copy())[change.realmId]?.[`${change.entity}/${change.id}`] !== undefined;
        failures.push({ change, inFeed, inCopy });
        throw new Error("crash between publishing and recording");
      },
    };
    processor = await startProcessor(pipeline.processorConfig("f1"), logger, hooks);
    const customer = company.create("Customer");
    await expect
      .poll(async () => (await pipeline.copy())[company.realmId]?.[`Customer/${customer.Id}`], {
        timeout: 20_000,
      })
      .toBe("0");
    company.delete("Customer", customer.Id);
    await expect
      .poll(async () => (await pipeline.copy())[company.realmId]?.[`Customer/${customer.Id}`], { timeout: 20_000 })
      .toBeUndefined();
    expect(failures.map((f) => [f.change.operation, f.inFeed])).toEqual([
      ["Create", true],
      ["Delete", true],
    ]);
    // When the Create failed, the copy did not have the customer yet; when the Delete failed, it still did.
    expect(failures.map((f) => f.inCopy)).toEqual([false, true]);
    expect(await pipeline.feedCopy()).toEqual(await pipeline.copy());
  });
});
