import { once } from "node:events";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { Streams, Subjects } from "@qbo-webhooks/contracts";
import { ensureStream, NatsClient, publishDurable } from "@qbo-webhooks/messaging";
import { NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import { createLogger } from "@qbo-webhooks/observability";
import { Registry } from "prom-client";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChangeDelivery } from "./change-delivery.js";

const logger = createLogger({ service: "test", level: "silent" });
const SECRET = `whsec_${Buffer.from("a secret of thirty-two bytes!!!!").toString("base64")}`;

describe("change-delivery", () => {
  let nats: NatsServerProcess;
  let client: NatsClient;
  const received: { body: string; headers: IncomingHttpHeaders }[] = [];
  let answers: number[] = [];
  let url = "";
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push({ body: Buffer.concat(chunks).toString(), headers: req.headers });
      res.writeHead(answers.shift() ?? 200).end();
    });
  });

  beforeAll(async () => {
    nats = await NatsServerProcess.start();
    client = await NatsClient.connect({ servers: [nats.url], name: "test", logger });
    for (const spec of [Streams.changes, Streams.dlq]) await ensureStream(client.jsm, spec, { replicas: 1 });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/changes`;
  });
  afterAll(async () => {
    server.close();
    await client?.drain();
    await nats?.dispose();
  });

  const startDelivery = () =>
    ChangeDelivery.start({
      client,
      url,
      secret: SECRET,
      timeoutMs: 2000,
      maxAttempts: 3,
      retryBaseMs: 50,
      registry: new Registry(),
      logger,
    });

  const change = (id: string) =>
    JSON.stringify({
      realmId: "1",
      entity: "Customer",
      id,
      operation: "Update",
      occurredAt: new Date().toISOString(),
      appliedAt: new Date().toISOString(),
      data: { Id: id, SyncToken: "1" },
    });

  it("delivery - POSTs each change signed per Standard Webhooks, retrying a failed POST with the same webhook-id", async () => {
    answers = [500];
    const delivery = await startDelivery();
    try {
      await publishDurable(client, Subjects.changes("1", "Customer"), new TextEncoder().encode(change("7")), {
        msgId: "1.Customer.7.v1",
        timeoutMs: 2000,
      });
      await expect.poll(() => received.length, { timeout: 10_000 }).toBe(2);
      const [failed, ok] = received;
      expect(failed?.headers["webhook-id"]).toBe("1.Customer.7.v1");
      expect(ok?.headers["webhook-id"]).toBe("1.Customer.7.v1");
      const verified = new Webhook(SECRET).verify(ok?.body ?? "", ok?.headers as Record<string, string>);
      expect(verified).toMatchObject({ id: "7", entity: "Customer" });
    } finally {
      await delivery.stop();
    }
  });

  it("delivery - after the retry budget the change is dead-lettered with the reason", async () => {
    received.length = 0;
    answers = [503, 503, 503];
    const delivery = await startDelivery();
    try {
      await publishDurable(client, Subjects.changes("1", "Customer"), new TextEncoder().encode(change("8")), {
        msgId: "1.Customer.8.v1",
        timeoutMs: 2000,
      });
      await expect
        .poll(
          async () =>
            (
              await client.jsm.streams
                .getMessage(Streams.dlq.name, { last_by_subj: Subjects.dlq("delivery") })
                .catch(() => null)
            )?.header.get("Qbo-Dlq-Reason"),
          { timeout: 10_000 },
        )
        .toBe("the app answered 503");
      expect(received).toHaveLength(3);
    } finally {
      await delivery.stop();
    }
  });
});
