import { Streams, signIntuitPayload } from "@qbo-webhooks/contracts";
import { sampleCloudEventBody, sampleLegacyBody } from "@qbo-webhooks/contracts/testing";
import { NatsClient } from "@qbo-webhooks/messaging";
import { NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import { createLogger } from "@qbo-webhooks/observability";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type IngressService, startIngress } from "./ingress-service.js";
import { testIngressConfig } from "./testing/test-ingress-config.js";

const TOKEN = "fuzz-verifier-token";
const MAX_BODY_BYTES = 16 * 1024;
const RUNS = 10_000;
const CONCURRENT = 10;
const logger = createLogger({ service: "ingress-fuzz", level: "silent" });

/** A request as a careless or hostile client could send it: any bytes, signed well, badly or not at all. */
const request = fc.record({
  body: fc.oneof(
    { weight: 3, arbitrary: fc.uint8Array({ maxLength: 512 }) },
    { weight: 3, arbitrary: fc.json().map((text) => Buffer.from(text)) },
    { weight: 2, arbitrary: fc.integer({ min: 1, max: 5 }).map((n) => Buffer.from(sampleCloudEventBody(n))) },
    { weight: 1, arbitrary: fc.constant(Buffer.from(sampleLegacyBody())) },
    {
      weight: 2,
      arbitrary: fc.tuple(fc.integer({ min: 1, max: 5 }), fc.nat()).map(([n, cut]) => {
        const whole = Buffer.from(sampleCloudEventBody(n));
        return whole.subarray(0, cut % whole.length);
      }),
    },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 256 }).map((s) => Buffer.from(s, "latin1")) },
    {
      weight: 1,
      arbitrary: fc.integer({ min: MAX_BODY_BYTES + 1, max: 4 * MAX_BODY_BYTES }).map((n) => Buffer.alloc(n, 0x7b)),
    },
  ),
  signing: fc.constantFrom("right", "none", "other-token", "garbage", "empty", "right-for-other-body"),
  contentType: fc.constantFrom(
    "application/json",
    "application/cloudevents+json",
    "text/plain; charset=latin1",
    "application/octet-stream",
    undefined,
  ),
});
type Request = typeof request extends fc.Arbitrary<infer T> ? T : never;

describe("ingress under 10,000 generated requests", () => {
  let server: NatsServerProcess;
  let ingress: IngressService;
  let reader: NatsClient;
  let base = "";
  beforeAll(async () => {
    server = await NatsServerProcess.start();
    ingress = await startIngress(testIngressConfig([server.url], [TOKEN], { maxBodyBytes: MAX_BODY_BYTES }), logger);
    await ingress.ready;
    base = `http://127.0.0.1:${ingress.port}`;
    reader = await NatsClient.connect({ servers: [server.url], name: "fuzz-reader", logger });
  });
  afterAll(async () => {
    await ingress?.close();
    await reader?.drain();
    await server?.dispose();
  });

  const send = async ({ body, signing, contentType }: Request) => {
    const headers: Record<string, string> = {};
    if (contentType) headers["content-type"] = contentType;
    const signature = {
      right: signIntuitPayload(body, TOKEN),
      "other-token": signIntuitPayload(body, "someone-elses-token"),
      garbage: "not base64 at all \u00ff",
      empty: "",
      "right-for-other-body": signIntuitPayload(Buffer.concat([body, Buffer.from(" ")]), TOKEN),
      none: undefined,
    }[signing];
    if (signature !== undefined) headers["intuit-signature"] = signature;
    const response = await fetch(`${base}/webhooks/quickbooks`, { method: "POST", headers, body });
    await response.arrayBuffer();
    return response.status;
  };

  it("fuzz - only the documented answers come back, nothing unsigned is stored, and the process stays up with flat memory", {
    timeout: 300_000,
  }, async () => {
    const signedBodies = new Set<string>();
    const rssBefore = process.memoryUsage().rss;
    const answeredAsDocumented = async (req: Request) => {
      const status = await send(req);
      const signed = req.signing === "right";
      if (req.body.length > MAX_BODY_BYTES) return status === 413;
      if (!signed) return status === 401;
      signedBodies.add(Buffer.from(req.body).toString("base64"));
      return status === 200;
    };
    // Requests arrive CONCURRENT at a time, as QuickBooks and strangers send them side by side.
    await fc.assert(
      fc.asyncProperty(fc.array(request, { minLength: CONCURRENT, maxLength: CONCURRENT }), async (batch) =>
        (await Promise.all(batch.map(answeredAsDocumented))).every(Boolean),
      ),
      { numRuns: RUNS / CONCURRENT, seed: 20261130 },
    );
    const stored = [];
    for (const stream of [Streams.webhooks.name, Streams.dlq.name]) {
      const info = await reader.jsm.streams.info(stream);
      for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
        const msg = await reader.jsm.streams.getMessage(stream, { seq });
        if (msg) stored.push(Buffer.from(msg.data).toString("base64"));
      }
    }
    expect(stored.length).toBeGreaterThan(0);
    expect(stored.filter((body) => !signedBodies.has(body))).toEqual([]);
    expect((await fetch(`http://127.0.0.1:${ingress.opsPort}/healthz`)).status).toBe(200);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(150 * 1024 * 1024);
  });
});
