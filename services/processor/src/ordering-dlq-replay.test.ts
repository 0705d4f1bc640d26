import { Buckets, Consumers, Streams } from "@qbo-webhooks/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ProcessorService, startProcessor } from "./processor-service.js";
import { type AppReceiver, startAppReceiver } from "./testing/app-receiver.js";
import { type ListedLetter, logger, type Pipeline, startPipeline } from "./testing/pipeline-harness.js";

// The ordering stage's dead letters, replayed by an operator once the cause is fixed, end where users
// look: our copy, the feed and the app. The cause here is an operator's mistake: the bucket of
// recorded versions deleted under a running ordering, which then fails every notification until it
// gives up on each (MAX_ATTEMPTS); a restart makes the bucket again. Ingress and ordering run as
// processes, as in production.
describe("ordering dead letters replayed once the cause is fixed", () => {
  let pipeline: Pipeline;
  let app: AppReceiver;
  let processor: ProcessorService;
  beforeAll(async () => {
    pipeline = await startPipeline({ realms: 2, processes: true });
    app = await startAppReceiver();
    processor = await startProcessor(pipeline.processorConfig("o1", "cdc", { url: app.url }), logger);
  });
  afterAll(async () => {
    await processor?.close();
    await app?.close();
    await pipeline?.close();
  });

  const notificationsWaiting = async () => {
    const info = await pipeline.reader.jsm.consumers.info(Streams.webhooks.name, Consumers.ordering);
    return info.num_pending + info.num_ack_pending;
  };

  it("dlq replay - notifications ordering gave up on reach our copy, the feed and the app once ordering works again and they are replayed", {
    timeout: 150_000,
  }, async () => {
    await pipeline.traffic(30, 61);
    await expect
      .poll(() => pipeline.outputs(app), { timeout: 30_000, interval: 1000 })
      .toEqual(pipeline.exactOutputs(app));

    await pipeline.reader.jsm.streams.delete(`KV_${Buckets.entityVersions}`);
    await pipeline.traffic(30, 62);
    // Every notification since is dead-lettered (after 5 attempts, 1 + 2 + 4 + 8 s apart), none left waiting.
    let letters: ListedLetter[] = [];
    await expect
      .poll(
        async () => {
          const before = letters.length;
          letters = await pipeline.deadLetters("ordering");
          return letters.length > 0 && letters.length === before && (await notificationsWaiting()) === 0;
        },
        { timeout: 90_000, interval: 3000 },
      )
      .toBe(true);
    expect(letters.every((letter) => /failed 5 times/.test(letter.reason))).toBe(true);
    expect(await pipeline.copy()).not.toEqual(pipeline.truth());

    const ordering = pipeline.services?.ordering;
    if (!ordering) throw new Error("ordering does not run as a process");
    await ordering.restart();
    const replay = await pipeline.cli({}, "dlq", "replay", "--all", "--stage", "ordering", "--json");
    expect(replay).toMatchObject({ code: 0 });
    expect(JSON.parse(replay.stdout)).toHaveLength(letters.length);

    await expect
      .poll(() => pipeline.outputs(app), { timeout: 30_000, interval: 1000 })
      .toEqual(pipeline.exactOutputs(app));
    expect((await pipeline.cli({}, "dlq", "list")).stdout.trim()).toBe("no dead letters");
  });
});
