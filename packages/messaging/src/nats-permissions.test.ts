import { fileURLToPath } from "node:url";
import { type BucketName, Buckets, Streams, Subjects } from "@qbo-webhooks/contracts";
import { createLogger } from "@qbo-webhooks/observability";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureStream } from "./ensure-stream.js";
import { openBucket, purgeKeys } from "./kv-bucket.js";
import { NatsClient } from "./nats-client.js";
import { PublishError, publishDurable } from "./publish-durable.js";
import { NatsServerProcess } from "./testing/index.js";

const logger = createLogger({ service: "test", level: "silent" });
/** The users and permissions we ship, as `npm start` and the chart run them. */
const SHIPPED = fileURLToPath(new URL("../../../charts/qbo-webhooks/files/nats-auth.conf", import.meta.url));
const USERS = ["ingress", "ordering", "processor", "reconciler", "operator"] as const;
type User = (typeof USERS)[number];
const password = (user: User) => `${user}-password-for-tests`;
const body = new TextEncoder().encode("{}");

describe("NATS: one user per service, each allowed only its own subjects (charts/qbo-webhooks/files/nats-auth.conf)", () => {
  let server: NatsServerProcess;
  const clients = new Map<User, NatsClient>();
  const as = (user: User) => {
    const client = clients.get(user);
    if (!client) throw new Error(`no client for ${user}`);
    return client;
  };
  beforeAll(async () => {
    server = await NatsServerProcess.start({
      include: SHIPPED,
      env: Object.fromEntries(USERS.map((u) => [`QBO_NATS_${u.toUpperCase()}_PASSWORD`, password(u)])),
    });
    for (const user of USERS) {
      clients.set(
        user,
        await NatsClient.connect({
          servers: [server.url],
          name: `test-${user}`,
          logger,
          auth: { user, password: password(user) },
        }),
      );
    }
    for (const spec of Object.values(Streams))
      await ensureStream(as("operator").jsm, spec, { replicas: 1 }, { logger });
  });
  afterAll(async () => {
    for (const client of clients.values()) await client.drain();
    await server?.dispose();
  });

  const publishes = (user: User, subject: string) =>
    publishDurable(as(user), subject, body, { msgId: `${user}-${subject}-${Math.random()}`, timeoutMs: 2000 }).then(
      () => "stored",
      (err: unknown) => (err instanceof PublishError ? err.code : `failed: ${String(err)}`),
    );

  it("nats - anonymous clients and wrong passwords are refused", async () => {
    await expect(NatsClient.connect({ servers: [server.url], name: "anonymous", logger })).rejects.toThrow(
      /Authorization Violation/i,
    );
    await expect(
      NatsClient.connect({
        servers: [server.url],
        name: "wrong",
        logger,
        auth: { user: "ingress", password: "guess" },
      }),
    ).rejects.toThrow(/Authorization Violation/i);
  });

  it("nats - each service publishes its own subjects and nothing else", async () => {
    const cases: [User, string, boolean][] = [
      ["ingress", Subjects.webhooks, true],
      ["ingress", Subjects.dlq("ingress"), true],
      ["ingress", Subjects.events(1, "123"), false],
      ["ingress", Subjects.changes("123", "Customer"), false],
      ["ingress", Subjects.dlq("processor"), false],
      ["ordering", Subjects.events(1, "123"), true],
      ["ordering", Subjects.webhooks, false],
      ["ordering", Subjects.changes("123", "Customer"), false],
      ["processor", Subjects.changes("123", "Customer"), true],
      ["processor", Subjects.deliveries(1, "123"), true],
      ["processor", Subjects.webhooks, false],
      ["processor", Subjects.events(1, "123"), false],
      ["reconciler", Subjects.webhooks, true],
      ["reconciler", Subjects.changes("123", "Customer"), false],
    ];
    const outcomes = await Promise.all(
      cases.map(async ([user, subject]) => `${user} → ${subject}: ${await publishes(user, subject)}`),
    );
    expect(outcomes).toEqual(
      cases.map(([user, subject, ok]) => `${user} → ${subject}: ${ok ? "stored" : "PUBLISH_FORBIDDEN"}`),
    );
  });

  it("nats - buckets are written only by the services that own them; tokens never by the ingress or ordering", async () => {
    await openBucket(as("operator"), Buckets.tokens, { replicas: 1 });
    await openBucket(as("operator"), Buckets.entities, { replicas: 1 });
    const writes = (user: User, bucket: BucketName) =>
      openBucket(as(user), bucket, { replicas: 1 })
        .then((kv) => kv.put("k", "v"))
        .then(
          () => "written",
          () => "refused",
        );
    expect(await writes("processor", Buckets.tokens)).toBe("written");
    expect(await writes("reconciler", Buckets.tokens)).toBe("written");
    expect(await writes("ingress", Buckets.tokens)).toBe("refused");
    expect(await writes("ordering", Buckets.tokens)).toBe("refused");
    expect(await writes("reconciler", Buckets.entities)).toBe("refused");
    expect(await writes("processor", Buckets.entities)).toBe("written");
    // A company removed with its data: the reconciler purges its keys, which it may not write.
    await (await openBucket(as("operator"), Buckets.entities, { replicas: 1 })).put("realm-1.Customer.1", "{}");
    const purge = (user: User) =>
      purgeKeys(as(user), Buckets.entities, "realm-1").then(
        (purged) => purged,
        () => "refused",
      );
    expect(await purge("reconciler")).toBe(1);
    expect(await purge("ordering")).toBe("refused");
  });

  it("nats - the ingress and ordering cannot read the token or connect-flow buckets, nor watch or reconfigure them", async () => {
    const tokens = await openBucket(as("operator"), Buckets.tokens, { replicas: 1 });
    await tokens.put("realm-1", "sealed");
    await openBucket(as("operator"), Buckets.connectFlows, { replicas: 1 });
    const refusedRead = async (user: User, bucket: BucketName) => {
      const read = await as(user)
        .jsm.streams.getMessage(`KV_${bucket}`, { last_by_subj: `$KV.${bucket}.realm-1` })
        .then(
          () => "read",
          (err: unknown) => String(err),
        );
      const watched = await as(user)
        .jsm.consumers.add(`KV_${bucket}`, { filter_subject: `$KV.${bucket}.>` })
        .then(
          () => "consumer made",
          (err: unknown) => String(err),
        );
      const reconfigured = await as(user)
        .jsm.streams.update(`KV_${bucket}`, { max_age: 1_000_000_000 })
        .then(
          () => "reconfigured",
          (err: unknown) => String(err),
        );
      return [read, watched, reconfigured].map((outcome) =>
        /permission|timeout/i.test(outcome) ? "refused" : outcome,
      );
    };
    for (const user of ["ingress", "ordering"] as const) {
      expect(await refusedRead(user, Buckets.tokens)).toEqual(["refused", "refused", "refused"]);
      expect(await refusedRead(user, Buckets.connectFlows)).toEqual(["refused", "refused", "refused"]);
    }
    expect((await (await openBucket(as("processor"), Buckets.tokens, { replicas: 1 })).get("realm-1"))?.string()).toBe(
      "sealed",
    );
  });
});
