import { Socket } from "node:net";
import { createLogger } from "@qbo-webhooks/observability";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { NatsClient } from "./nats-client.js";
import { NatsServerProcess } from "./testing/index.js";

const logger = createLogger({ service: "test", level: "silent" });
const SUBJECT = "coalesce.test";

describe("the coalesced-writes fix of @nats-io/nats-core's ProtocolHandler", () => {
  let server: NatsServerProcess;
  beforeAll(async () => {
    server = await NatsServerProcess.start();
  });
  afterAll(async () => {
    await server.dispose();
  });

  it("nats - messages published from separate callbacks of one event-loop phase go out in one socket write, in order", async () => {
    const publisher = await NatsClient.connect({ servers: [server.url], name: "publisher", logger });
    const reader = await NatsClient.connect({ servers: [server.url], name: "reader", logger });
    const write = vi.spyOn(Socket.prototype, "write");
    try {
      const received: string[] = [];
      const subscription = reader.nc.subscribe(SUBJECT, { max: 20 });
      const done = (async () => {
        for await (const msg of subscription) received.push(msg.string());
      })();
      await reader.nc.flush();

      // Twenty callbacks of one phase of the event loop (as HTTP requests parsed in one poll are):
      // each used to cost a socket write of its own.
      await new Promise<void>((resolve) => {
        for (let i = 0; i < 20; i++)
          setImmediate(() => {
            publisher.nc.publish(SUBJECT, String(i));
            if (i === 19) resolve();
          });
      });
      await publisher.nc.flush();
      await done;

      expect(received).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
      const publishing = write.mock.calls.filter(([chunk]) => Buffer.from(chunk).toString().includes(`PUB ${SUBJECT}`));
      expect(publishing).toHaveLength(1);
    } finally {
      write.mockRestore();
      await publisher.drain();
      await reader.drain();
    }
  });
});
