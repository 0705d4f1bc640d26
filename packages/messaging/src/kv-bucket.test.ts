import { Kvm } from "@nats-io/kv";
import { nanos } from "@nats-io/transport-node";
import { BucketLimits, Buckets } from "@qbo-webhooks/contracts";
import { createLogger } from "@qbo-webhooks/observability";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openBucket } from "./kv-bucket.js";
import { NatsClient } from "./nats-client.js";
import { NatsServerProcess } from "./testing/index.js";

const logger = createLogger({ service: "test", level: "silent" });

describe("kv-bucket", () => {
  let server: NatsServerProcess;
  let client: NatsClient;
  beforeAll(async () => {
    server = await NatsServerProcess.start();
    client = await NatsClient.connect({ servers: [server.url], name: "test", logger });
  });
  afterAll(async () => {
    await client.drain();
    await server.dispose();
  });

  it("kv-bucket - opens every bucket with its documented limits, history and expiry", async () => {
    for (const name of Object.values(Buckets)) {
      await openBucket(client, name, { replicas: 1 });
      const { config } = await client.jsm.streams.info(`KV_${name}`);
      expect(config, name).toMatchObject({
        max_bytes: BucketLimits[name].maxBytes,
        max_msg_size: BucketLimits[name].maxValueSize,
        max_msgs_per_subject: BucketLimits[name].history ?? 1,
        max_age: nanos(BucketLimits[name].ttlMs ?? 0),
      });
    }
  });

  it("kv-bucket - gives a bucket an older version made without limits its limits, keeping its keys", async () => {
    const stream = `KV_${Buckets.realms}`;
    await client.jsm.streams.delete(stream);
    await (await new Kvm(client.js).create(Buckets.realms, { history: 1 })).put("realm-1", "{}");
    expect((await client.jsm.streams.info(stream)).config.max_bytes).toBe(-1);

    const kv = await openBucket(client, Buckets.realms, { replicas: 1 });
    expect((await client.jsm.streams.info(stream)).config.max_bytes).toBe(BucketLimits[Buckets.realms].maxBytes);
    expect((await kv.get("realm-1"))?.string()).toBe("{}");
    // A value over the limit is refused, not stored cut or dropped later.
    await expect(kv.put("realm-2", new Uint8Array(BucketLimits[Buckets.realms].maxValueSize + 1))).rejects.toThrow();
  });
});
