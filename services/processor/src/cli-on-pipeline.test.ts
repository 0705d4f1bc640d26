import type { Company } from "@qbo-webhooks/sandbox";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ProcessorService, startProcessor } from "./processor-service.js";
import { logger, type Pipeline, startPipeline } from "./testing/pipeline-harness.js";

// The CLI as a user runs it, a process of its own, against a running pipeline.
describe("qbo-webhooks against a running pipeline", () => {
  let pipeline: Pipeline;
  let processor: ProcessorService;
  beforeAll(async () => {
    pipeline = await startPipeline({ realms: 1 });
    processor = await startProcessor(pipeline.processorConfig("p1"), logger);
  });
  afterAll(async () => {
    await processor?.close();
    await pipeline?.close();
  });

  const cli = (env: Record<string, string>, ...args: string[]) => pipeline.cli(env, ...args);
  const ingressUrl = () => `http://127.0.0.1:${pipeline.ingress.port}/webhooks/quickbooks`;
  const local = () => ({
    SANDBOX_URL: pipeline.sandbox.url,
    INGRESS_URL: ingressUrl(),
    QBO_VERIFIER_TOKENS: pipeline.verifierToken,
  });

  it("status - one screen says every service is up and ready, the backlog, dead letters, realms and the nats-server; a service down makes it exit 1", {
    timeout: 30_000,
  }, async () => {
    const ops = [
      `ingress=http://127.0.0.1:${pipeline.ingress.opsPort}`,
      `ordering=http://127.0.0.1:${pipeline.ordering.opsPort}`,
      `processor=http://127.0.0.1:${processor.opsPort}`,
    ].join(",");
    const healthy = await cli({}, "status", "--json", "--ops", ops);
    expect(healthy).toMatchObject({ code: 0 });
    const status = JSON.parse(healthy.stdout);
    expect(status.services.map((s: { name: string; ready: boolean }) => [s.name, s.ready])).toEqual([
      ["ingress", true],
      ["ordering", true],
      ["processor", true],
    ]);
    expect(status).toMatchObject({
      nats: { version: expect.stringMatching(/^\d+\.\d+\.\d+/), storage: "file", replicas: 1 },
      deadLetters: { ingress: 0, ordering: 0, processor: 0, delivery: 0 },
      oldestWaitingSeconds: { QBO_WEBHOOKS: expect.any(Number), QBO_EVENTS: expect.any(Number) },
    });
    expect(status.pending.length).toBeGreaterThan(0);
    const down = await cli({}, "status", "--ops", `${ops},reconciler=http://127.0.0.1:1`);
    expect(down).toMatchObject({ code: 1, stdout: expect.stringMatching(/reconciler +DOWN/) });
    expect(down.stdout).toMatch(/^services:\n {2}ingress +ready/);
  });

  it.each([["CloudEvents"], ["legacy"]])(
    "test notification - a %s notification the CLI signs brings a change no webhook announced into the feed, and it says how long it took",
    {
      timeout: 60_000,
    },
    async (form) => {
      const [company] = pipeline.realms as [Company];
      const result = await cli(
        local(),
        "send-test-notification",
        "--realm",
        company.realmId,
        "--json",
        ...(form === "legacy" ? ["--legacy"] : []),
      );
      expect(result).toMatchObject({ code: 0 });
      const sent = JSON.parse(result.stdout);
      expect(sent).toMatchObject({ realmId: company.realmId, entity: "Customer", answer: { status: 200 } });
      expect(sent.arrivedAfterMs).toBeGreaterThan(0);
      // The sandbox announced none of it: only the CLI's notification can have brought it.
      const announced = pipeline.sandbox
        .deliveries("app")
        .notifications.flatMap((n) => n.changes)
        .filter((c) => c.entity === "Customer" && c.id === sent.id);
      expect(announced).toEqual([]);
      expect((await pipeline.copy())[company.realmId]?.[`Customer/${sent.id}`]).toBe(sent.syncToken);
    },
  );

  it("test notification - without a local instance it says how to start one, exit 1", async () => {
    const result = await cli({ QBO_VERIFIER_TOKENS: "v" }, "send-test-notification");
    expect(result).toMatchObject({ code: 1, stderr: expect.stringMatching(/npm start.*--url/) });
  });

  it("test notification - with --url it only sends, and says what it could not check", async () => {
    const result = await cli(
      { QBO_VERIFIER_TOKENS: pipeline.verifierToken },
      "send-test-notification",
      "--url",
      ingressUrl(),
    );
    expect(result).toMatchObject({ code: 0, stdout: expect.stringMatching(/^200 [\s\S]*not checked/) });
    const refused = await cli(
      { QBO_VERIFIER_TOKENS: "not-the-token" },
      "send-test-notification",
      "--url",
      ingressUrl(),
    );
    expect(refused).toMatchObject({ code: 1, stdout: expect.stringMatching(/^401 [\s\S]*not stored/) });
  });
});
