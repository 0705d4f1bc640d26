import { createHash } from "node:crypto";
import { once } from "node:events";
import { rm } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import type { StoredMsg } from "@nats-io/jetstream";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { Streams, Subjects, signIntuitPayload } from "@qbo-webhooks/contracts";
import { sampleCloudEventBody, sampleLegacyBody } from "@qbo-webhooks/contracts/testing";
import { NatsClient } from "@qbo-webhooks/messaging";
import { NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import { createLogger } from "@qbo-webhooks/observability";
import { startTelemetry, type Telemetry } from "@qbo-webhooks/observability/telemetry";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type IngressService, startIngress } from "./ingress-service.js";
import { testIngressConfig } from "./testing/test-ingress-config.js";

// The Java SDK's test vector (QBO.md §2): its token is the second of a rotation here.
const VECTOR = {
  token: "b5771f19b12ddb4bcdb9f08bdc50bc63878a",
  body: '{"eventNotifications":[{"realmId":"1185883450","dataChangeEvent":{"entities":[{"name":"Customer","id":"1","operation":"Create","lastUpdated":"2015-10-05T14:42:19-0700"}]}}]}',
  signature: "JC2GUwciPmRBwEO7WvrRmKqu9tGOKL8FFallocTFi8Q=",
};
const TOKEN = "current-verifier-token";
const MAX_BODY_BYTES = 64 * 1024;
const logger = createLogger({ service: "ingress-test", level: "silent" });

interface PostOptions {
  readonly signature?: string | null;
  readonly token?: string;
  readonly contentType?: string | null;
  readonly path?: string;
}

describe("ingress webhook endpoint", () => {
  let server: NatsServerProcess;
  let ingress: IngressService;
  let reader: NatsClient;
  let telemetry: Telemetry;
  const spans = new InMemorySpanExporter();
  let base: string;
  let ops: string;

  beforeAll(async () => {
    telemetry = startTelemetry({
      serviceName: "ingress-test",
      exportOtlp: false,
      spanProcessors: [new SimpleSpanProcessor(spans)],
    });
    server = await NatsServerProcess.start();
    const config = testIngressConfig([server.url], [TOKEN, VECTOR.token], { maxBodyBytes: MAX_BODY_BYTES });
    ingress = await startIngress(config, logger);
    await ingress.ready;
    base = `http://127.0.0.1:${ingress.port}`;
    ops = `http://127.0.0.1:${ingress.opsPort}`;
    reader = await NatsClient.connect({ servers: [server.url], name: "test-reader", logger });
  });

  afterAll(async () => {
    await ingress?.close();
    await reader?.drain();
    await server?.dispose();
    await telemetry?.shutdown();
  });

  beforeEach(async () => {
    await reader.jsm.streams.purge(Streams.webhooks.name);
    await reader.jsm.streams.purge(Streams.dlq.name);
  });

  function post(body: string | Buffer, options: PostOptions = {}) {
    const headers: Record<string, string> = {};
    const signature =
      options.signature === undefined ? signIntuitPayload(body, options.token ?? TOKEN) : options.signature;
    if (signature !== null) headers["intuit-signature"] = signature;
    const contentType = options.contentType === undefined ? "application/json" : options.contentType;
    if (contentType !== null) headers["content-type"] = contentType;
    return fetch(`${base}${options.path ?? "/webhooks/quickbooks"}`, { method: "POST", headers, body });
  }

  async function messages(stream: string): Promise<StoredMsg[]> {
    const info = await reader.jsm.streams.info(stream);
    const found: StoredMsg[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const msg = await reader.jsm.streams.getMessage(stream, { seq });
      if (msg) found.push(msg);
    }
    return found;
  }

  it("webhook - stores a signed CloudEvents notification raw, keyed by the SHA-256 of its body", async () => {
    const body = sampleCloudEventBody(3, { realmId: "4620816365" });
    const response = await post(body, { contentType: "application/cloudevents+json" });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(response.headers.get("content-length")).toBe(String('{"status":"stored"}'.length));
    expect(await response.json()).toEqual({ status: "stored" });

    const [stored, ...rest] = await messages(Streams.webhooks.name);
    expect(rest).toHaveLength(0);
    expect(stored?.subject).toBe(Subjects.webhooks);
    expect(Buffer.from(stored?.data ?? []).toString()).toBe(body);
    expect(stored?.header.get("Nats-Msg-Id")).toBe(createHash("sha256").update(body).digest("hex"));
    expect(stored?.header.get("Qbo-Payload-Form")).toBe("cloudevents");
    expect(Date.parse(stored?.header.get("Qbo-Received-At") ?? "")).toBeGreaterThan(Date.now() - 10_000);
  });

  it("webhook - stores the legacy test vector signed by the second token of a rotation", async () => {
    const response = await post(VECTOR.body, {
      signature: VECTOR.signature,
      contentType: "application/json; charset=utf-8",
    });
    expect(response.status).toBe(200);
    const [stored] = await messages(Streams.webhooks.name);
    expect(Buffer.from(stored?.data ?? []).toString()).toBe(VECTOR.body);
    expect(stored?.header.get("Qbo-Payload-Form")).toBe("legacy");
  });

  it("webhook - a body with extra whitespace, signed as sent, is stored byte for byte", async () => {
    const body = `  ${sampleLegacyBody().replace(":", " : ")}\n`;
    expect((await post(body)).status).toBe(200);
    const [stored] = await messages(Streams.webhooks.name);
    expect(Buffer.from(stored?.data ?? []).toString()).toBe(body);
  });

  it.each(["application/json", "application/cloudevents+json", "text/plain", "application/octet-stream", null])(
    "webhook - accepts Content-Type %s",
    async (contentType) => {
      expect((await post(sampleCloudEventBody(1), { contentType })).status).toBe(200);
      expect(await messages(Streams.webhooks.name)).toHaveLength(1);
    },
  );

  it("webhook - the same notification delivered twice is stored once", async () => {
    const body = sampleCloudEventBody(2);
    const first = await post(body);
    const second = await post(body);
    expect([first.status, second.status]).toEqual([200, 200]);
    expect(await second.json()).toEqual({ status: "duplicate" });
    expect(await messages(Streams.webhooks.name)).toHaveLength(1);
  });

  it.each([
    ["an empty CloudEvents array", "[]"],
    ["no realms", '{"eventNotifications":[]}'],
    ["a realm without changes", '{"eventNotifications":[{"realmId":"1","dataChangeEvent":{"entities":[]}}]}'],
    ["an empty body", ""],
  ])("webhook - a signed notification with %s is answered 200 and not stored", async (_name, body) => {
    const response = await post(body);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "no_events" });
    expect(await messages(Streams.webhooks.name)).toHaveLength(0);
    expect(await messages(Streams.dlq.name)).toHaveLength(0);
  });

  it.each([
    ["not JSON", "<xml>changed</xml>", /not JSON/],
    ["an unknown shape", '{"events":[{"entity":"Customer"}]}', /unknown shape/],
    [
      "a future CloudEvents version",
      sampleCloudEventBody(1, { type: "qbo.customer.updated.v2" }),
      /unknown event type/,
    ],
  ])("webhook - a signed body that is %s is quarantined in QBO_DLQ and answered 200", async (_name, body, reason) => {
    const response = await post(body);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "quarantined" });
    expect(await messages(Streams.webhooks.name)).toHaveLength(0);
    const [quarantined, ...rest] = await messages(Streams.dlq.name);
    expect(rest).toHaveLength(0);
    expect(quarantined?.subject).toBe(Subjects.dlq("ingress"));
    expect(Buffer.from(quarantined?.data ?? []).toString()).toBe(body);
    expect(quarantined?.header.get("Qbo-Dlq-Stage")).toBe("ingress");
    expect(quarantined?.header.get("Qbo-Dlq-Reason")).toMatch(reason);
  });

  const unsignedBodies = [
    ["CloudEvents", sampleCloudEventBody(1)],
    ["legacy", sampleLegacyBody()],
    ["not JSON", "hello"],
    ["unknown shape", '{"x":1}'],
    ["empty CloudEvents", "[]"],
    ["empty", ""],
  ] as const;
  const badSignatures = [
    ["no signature", null],
    ["an empty signature", ""],
    ["garbage", "1234"],
    ["another app's token", "other-token"],
  ] as const;
  it.each(unsignedBodies.flatMap(([kind, body]) => badSignatures.map(([how, sig]) => [kind, how, body, sig] as const)))(
    "webhook - a %s body with %s is answered 401 and nothing is stored",
    async (_kind, how, body, sig) => {
      const signature = sig === "other-token" ? signIntuitPayload(body, "other-token") : sig;
      const response = await post(body, { signature });
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ error: expect.stringMatching(/intuit-signature/) });
      expect(how).toBeTruthy();
      expect(await messages(Streams.webhooks.name)).toHaveLength(0);
      expect(await messages(Streams.dlq.name)).toHaveLength(0);
    },
  );

  it("webhook - a re-serialised body fails verification (the signature covers the bytes sent)", async () => {
    const sent = '{ "eventNotifications" : [] }';
    const response = await post(JSON.stringify(JSON.parse(sent)), { signature: signIntuitPayload(sent, TOKEN) });
    expect(response.status).toBe(401);
  });

  it("webhook - a body over MAX_BODY_BYTES is answered 413 and nothing is stored", async () => {
    const big = sampleCloudEventBody(600);
    expect(big.length).toBeGreaterThan(MAX_BODY_BYTES);
    const response = await post(big);
    expect(response.status).toBe(413);
    expect(await messages(Streams.webhooks.name)).toHaveLength(0);
    expect(await messages(Streams.dlq.name)).toHaveLength(0);
  });

  /**
   * Sends `head` and then `chunks` on a raw connection, never finishing the body, and answers what
   * came back and whether the server closed the connection: a server that read bodies to their end
   * before refusing them would answer nothing.
   */
  async function sendUnfinished(head: string, chunks: Buffer[]): Promise<{ answer: string; closed: boolean }> {
    const socket = connect(ingress.port, "127.0.0.1");
    await once(socket, "connect");
    let answer = "";
    socket.on("data", (data: Buffer) => {
      answer += data.toString();
    });
    const closed = new Promise<boolean>((resolve) => socket.once("close", () => resolve(true)));
    socket.on("error", () => undefined); // the server may reset what we still send
    socket.write(head);
    for (const chunk of chunks) socket.write(chunk);
    const result = await Promise.race([
      closed,
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000)),
    ]);
    socket.destroy();
    return { answer, closed: result };
  }

  it("webhook - an unsigned 100 MB body is refused by its Content-Length before it is read: 413, connection closed, nothing stored", async () => {
    const head =
      "POST /webhooks/quickbooks HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n" +
      `content-length: ${100 * 1024 * 1024}\r\n\r\n`;
    // 1 MB of the announced 100 MB is all that is ever sent.
    const { answer, closed } = await sendUnfinished(head, [Buffer.alloc(1024 * 1024, "x")]);
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer.toLowerCase()).toContain("connection: close");
    expect(answer).toContain(`"error":"body exceeds ${MAX_BODY_BYTES} bytes"`);
    expect(closed).toBe(true);
    expect(await messages(Streams.webhooks.name)).toHaveLength(0);
    expect(await messages(Streams.dlq.name)).toHaveLength(0);
  });

  it("webhook - a chunked body is refused as soon as it passes the limit: 413, connection closed, nothing stored", async () => {
    const head = "POST /webhooks/quickbooks HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\n\r\n";
    const chunk = (size: number) =>
      Buffer.concat([Buffer.from(`${size.toString(16)}\r\n`), Buffer.alloc(size, "x"), Buffer.from("\r\n")]);
    // Past the limit by a little, and never the closing chunk.
    const { answer, closed } = await sendUnfinished(head, [chunk(MAX_BODY_BYTES), chunk(1024)]);
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(closed).toBe(true);
    expect(await messages(Streams.webhooks.name)).toHaveLength(0);
  });

  it("webhook - another method on the webhook path is answered JSON 405 with Allow: POST", async () => {
    for (const method of ["GET", "PUT", "DELETE", "PATCH"]) {
      const response = await fetch(`${base}/webhooks/quickbooks`, { method });
      expect(response.status, method).toBe(405);
      expect(response.headers.get("allow"), method).toBe("POST");
      expect(response.headers.get("content-type"), method).toMatch(/^application\/json/);
      expect(await response.json(), method).toEqual({ error: `${method} is not allowed here: use POST` });
    }
    const text = await (await fetch(`${ops}/metrics`)).text();
    expect(text).toMatch(
      /qbo_webhook_requests_total\{(?=[^}]*code="405")(?=[^}]*reason="method_not_allowed")[^}]*\} [1-9]/,
    );
  });

  // QuickBooks posts to the exact path, which bypasses express' router; these go through it.
  it.each(["/webhooks/quickbooks?source=intuit", "/webhooks/quickbooks/", "/Webhooks/QuickBooks"])(
    "webhook - the path spelt %s is served alike: stored when signed, 401 when not, span and metrics",
    async (path) => {
      spans.reset();
      const body = sampleCloudEventBody(2, { realmId: "4620816366" });
      const response = await post(body, { path });
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("application/json; charset=utf-8");
      expect(await response.json()).toEqual({ status: "stored" });
      expect((await post(body, { path, signature: "nope" })).status).toBe(401);
      const [stored, ...rest] = await messages(Streams.webhooks.name);
      expect(rest).toHaveLength(0);
      expect(Buffer.from(stored?.data ?? []).toString()).toBe(body);
      const answered = spans.getFinishedSpans().filter((s) => s.name === "POST /webhooks/quickbooks");
      expect(answered.map((s) => s.attributes["http.response.status_code"])).toEqual([200, 401]);
    },
  );

  it("webhook - a request span is recorded and its trace context travels in the NATS headers", async () => {
    spans.reset();
    expect((await post(sampleCloudEventBody(1))).status).toBe(200);
    const [stored] = await messages(Streams.webhooks.name);
    const traceparent = stored?.header.get("traceparent") ?? "";
    const span = spans.getFinishedSpans().find((s) => s.name === "POST /webhooks/quickbooks");
    expect(span?.attributes["http.response.status_code"]).toBe(200);
    expect(traceparent.split("-")[1]).toBe(span?.spanContext().traceId);
  });

  it("metrics - expose answers by code and reason, ack latency with a 3 s bucket, and the last notification time", async () => {
    await post(sampleCloudEventBody(1));
    await post("{}", { signature: "nope" });
    const text = await (await fetch(`${ops}/metrics`)).text();
    expect(text).toMatch(
      /qbo_webhook_ack_duration_seconds_bucket\{(?=[^}]*le="3")(?=[^}]*outcome="accepted")[^}]*\} \d+/,
    );
    expect(text).toMatch(/qbo_webhook_ack_duration_seconds_bucket\{(?=[^}]*le="2.5")[^}]*\}/);
    expect(text).toMatch(/qbo_webhook_requests_total\{(?=[^}]*code="200")(?=[^}]*reason="stored")[^}]*\} [1-9]/);
    expect(text).toMatch(/qbo_webhook_requests_total\{(?=[^}]*code="401")(?=[^}]*reason="bad_signature")[^}]*\} [1-9]/);
    const last = /qbo_webhook_last_received_timestamp_seconds\{[^}]*\} (\S+)/.exec(text)?.[1];
    expect(Number(last)).toBeGreaterThan(Date.now() / 1000 - 60);
  });

  it("ports - the public port serves only POST /webhooks/quickbooks; health and metrics are on the ops port", async () => {
    for (const path of ["/metrics", "/healthz", "/readyz", "/", "/webhooks"]) {
      expect((await fetch(`${base}${path}`)).status, `public GET ${path}`).toBe(404);
    }
    expect((await fetch(`${ops}/metrics`)).status).toBe(200);
    expect((await fetch(`${ops}/webhooks/quickbooks`, { method: "POST", body: "{}" })).status).toBe(404);
  });

  it("readyz - is 200 while NATS is connected and the streams are declared", async () => {
    expect((await fetch(`${ops}/readyz`)).status).toBe(200);
    expect((await fetch(`${ops}/healthz`)).status).toBe(200);
  });

  // Last: it kills the server.
  it("webhook - answers 503 stream_full when QBO_WEBHOOKS is at its byte limit, and keeps every notification it acknowledged", async () => {
    const { config } = await reader.jsm.streams.info(Streams.webhooks.name);
    // A small limit stands in for a backlog of 1 GiB: the same refusal, reached in a few posts.
    await reader.jsm.streams.update(Streams.webhooks.name, { ...config, max_bytes: 8 * 1024 });
    try {
      const accepted: string[] = [];
      let refused: Response | undefined;
      for (let i = 0; i < 100 && !refused; i++) {
        const body = sampleCloudEventBody(3);
        const response = await post(body);
        if (response.status === 200) accepted.push(body);
        else refused = response;
      }
      expect(refused?.status).toBe(503);
      expect(accepted.length).toBeGreaterThan(0);
      const stored = (await messages(Streams.webhooks.name)).map((msg) => Buffer.from(msg.data).toString());
      expect(stored).toEqual(accepted);
      const metrics = await (await fetch(`${ops}/metrics`)).text();
      expect(metrics).toMatch(/qbo_webhook_requests_total\{code="503",reason="stream_full"[^}]*\} 1/);
    } finally {
      await reader.jsm.streams.update(Streams.webhooks.name, config);
    }
  });

  it("webhook - answers 503 within 3 s while NATS is down, and 200 again once it is back, without a restart", async () => {
    await server.kill();
    const started = performance.now();
    const response = await post(sampleCloudEventBody(1));
    const elapsed = performance.now() - started;
    expect(response.status).toBe(503);
    expect(elapsed).toBeLessThan(3000);
    await expect.poll(async () => (await fetch(`${ops}/readyz`)).status).toBe(503);
    // What the alerts read: QuickBooks' last delivery failed (a failure newer than the last 200), and not ready.
    const lastAnswers = async () => {
      const text = await (await fetch(`${ops}/metrics`)).text();
      const at = (outcome: string) =>
        Number(
          new RegExp(`qbo_webhook_last_answer_timestamp_seconds\\{[^}]*outcome="${outcome}"[^}]*\\} (\\S+)`).exec(
            text,
          )?.[1],
        );
      return { accepted: at("accepted"), failed: at("failed"), ready: /qbo_ready\{[^}]*\} 1/.test(text) };
    };
    const failing = await lastAnswers();
    expect(failing.failed).toBeGreaterThanOrEqual(failing.accepted);
    expect(failing.ready).toBe(false);

    await server.restart();
    await expect.poll(async () => (await fetch(`${ops}/readyz`)).status, { timeout: 15_000 }).toBe(200);
    const body = sampleCloudEventBody(1);
    expect((await post(body)).status).toBe(200);
    const healed = await lastAnswers();
    expect(healed.accepted).toBeGreaterThan(healed.failed);
    expect(healed.ready).toBe(true);
    await expect.poll(() => reader.connected, { timeout: 15_000 }).toBe(true);
    const stored = await messages(Streams.webhooks.name);
    expect(stored.map((msg) => Buffer.from(msg.data).toString())).toContain(body);
  });

  it("webhook - declares the streams again when NATS comes back with an empty store", async () => {
    await server.kill();
    await rm(join(server.dir, "jetstream"), { recursive: true, force: true });
    await server.restart();
    await expect.poll(async () => (await fetch(`${ops}/readyz`)).status, { timeout: 15_000 }).toBe(200);
    const body = sampleCloudEventBody(1);
    expect((await post(body)).status).toBe(200);
    await expect.poll(() => reader.connected, { timeout: 15_000 }).toBe(true);
    const [stored] = await messages(Streams.webhooks.name);
    expect(Buffer.from(stored?.data ?? []).toString()).toBe(body);
    expect((await reader.jsm.streams.info(Streams.dlq.name)).config.name).toBe("QBO_DLQ");
  });
});
