import { setTimeout as delay } from "node:timers/promises";
import type { Company } from "@qbo-webhooks/sandbox";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type ProcessorService, startProcessor } from "./processor-service.js";
import { logger, type Pipeline, startPipeline } from "./testing/pipeline-harness.js";

const COALESCE_MS = 1000;
/** A realm without a batch for this long is quiet (`QUIET_WINDOWS` in the worker). */
const QUIET_MS = 5 * COALESCE_MS;

let pipeline: Pipeline;
let processor: ProcessorService | undefined;
/** When each batch of the realm started and ended (`performance.now()`). */
const starts: number[] = [];
const ends: number[] = [];
beforeAll(async () => {
  pipeline = await startPipeline({ realms: 1 });
  processor = await startProcessor({ ...pipeline.processorConfig("coalescing"), coalesceMs: COALESCE_MS }, logger, {
    batchStarted: () => starts.push(performance.now()),
    batchEnded: () => ends.push(performance.now()),
  });
});
afterAll(async () => {
  await processor?.close();
  await pipeline?.close();
});

/** Creates a customer in the realm: its id, and when QuickBooks created it. */
function createCustomer(): { id: string; at: number } {
  const [company] = pipeline.realms as [Company];
  return { id: company.create("Customer").Id, at: performance.now() };
}

/** Waits until our copy has every one of the customers. */
async function untilApplied(ids: readonly string[]): Promise<void> {
  const [company] = pipeline.realms as [Company];
  await expect
    .poll(
      async () => {
        const copy = (await pipeline.copy())[company.realmId] ?? {};
        return ids.filter((id) => copy[`Customer/${id}`] === undefined);
      },
      { timeout: 20_000 },
    )
    .toEqual([]);
}

it("coalesce - a quiet realm's change starts at once; changes right after it wait COALESCE_MS and share one batch", {
  timeout: 60_000,
}, async () => {
  // The pipeline's first change is slow (connections, compilation): it warms up, then the realm rests.
  await untilApplied([createCustomer().id]);
  await delay(Math.max(0, (ends[0] ?? 0) + QUIET_MS - performance.now()) + 500);
  starts.length = 0;
  ends.length = 0;

  const first = createCustomer();
  await untilApplied([first.id]);
  expect(starts).toHaveLength(1);
  // Before, every batch waited COALESCE_MS from its first event's arrival, which follows `at`.
  expect(starts[0] ?? Number.NaN).toBeLessThan(first.at + COALESCE_MS);

  const next = [createCustomer()];
  for (let i = 0; i < 2; i++) {
    await delay(100);
    next.push(createCustomer());
  }
  await untilApplied(next.map(({ id }) => id));
  expect(starts).toHaveLength(2);
  // The first of them arrived after QuickBooks made it. Timers never fire early; a millisecond of
  // slack for the clocks' rounding.
  expect((starts[1] ?? 0) - (next[0]?.at ?? Number.POSITIVE_INFINITY)).toBeGreaterThanOrEqual(COALESCE_MS - 1);

  // Quiet again: the next change starts at once.
  await delay(Math.max(0, (ends[1] ?? 0) + QUIET_MS - performance.now()) + 500);
  const last = createCustomer();
  await untilApplied([last.id]);
  expect(starts).toHaveLength(3);
  expect(starts[2] ?? Number.NaN).toBeLessThan(last.at + COALESCE_MS);
  expect(await pipeline.outputs()).toEqual(pipeline.exactOutputs());
});
