import { createHash } from "node:crypto";
import { Streams } from "@qbo-webhooks/contracts";
import { type IngressService, startIngress } from "@qbo-webhooks/ingress/service";
import { testIngressConfig } from "@qbo-webhooks/ingress/testing";
import { NatsClient } from "@qbo-webhooks/messaging";
import { NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import { createLogger } from "@qbo-webhooks/observability";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seededRandom } from "./company/entity-fields.js";
import { Sandbox } from "./sandbox.js";
import { TrafficGenerator } from "./traffic/traffic-generator.js";

const TOKEN = "e2e-verifier-token";
const logger = createLogger({ service: "e2e", level: "silent" });

// The sandbox's webhooks into the real ingress on a real nats-server: each notification stored once.
describe("sandbox to ingress", () => {
  let nats: NatsServerProcess;
  let ingress: IngressService;
  let reader: NatsClient;

  beforeAll(async () => {
    nats = await NatsServerProcess.start();
    ingress = await startIngress(testIngressConfig([nats.url], [TOKEN]), logger);
    await ingress.ready;
    reader = await NatsClient.connect({ servers: [nats.url], name: "e2e-reader", logger });
  });
  afterAll(async () => {
    await ingress?.close();
    await reader?.drain();
    await nats?.dispose();
  });

  it.each(["cloudevents", "legacy"] as const)(
    "e2e - %s webhooks with duplicates and reordering reach the stream once each",
    async (payloadForm) => {
      await reader.jsm.streams.purge(Streams.webhooks.name);
      const sandbox = await Sandbox.start({ speed: 0, seed: 11 });
      try {
        sandbox.registerApp({
          appId: "app",
          clientId: "client",
          clientSecret: "secret",
          verifierToken: TOKEN,
          endpointUrl: `http://127.0.0.1:${ingress.port}/webhooks/quickbooks`,
          payloadForm,
        });
        const realms = [sandbox.createCompany(), sandbox.createCompany(), sandbox.createCompany()];
        for (const company of realms) sandbox.connect("app", company.realmId);
        sandbox.setWebhookFaults("app", [
          { kind: "duplicate", percent: 30 },
          { kind: "reorder", percent: 20 },
        ]);
        const traffic = new TrafficGenerator({
          realms,
          ratePerSecond: 0,
          random: seededRandom(5),
          burstProbability: 0,
        });
        for (let round = 0; round < 20; round++) {
          traffic.step(15);
          await sandbox.clock.advance(1000);
        }
        await sandbox.clock.advance(60_000);
        await sandbox.webhooks("app").settled();

        const { notifications, attempts } = sandbox.deliveries("app");
        expect(attempts.every((a) => a.ok)).toBe(true);
        const duplicates = notifications.filter((n) => n.duplicateOf).length;
        expect(duplicates).toBeGreaterThan(0);
        const distinct = new Set(notifications.filter((n) => n.state === "delivered").map((n) => n.body));
        const info = await reader.jsm.streams.info(Streams.webhooks.name);
        expect(info.state.messages).toBe(distinct.size);
        for (const body of distinct) {
          const msgId = createHash("sha256").update(body).digest("hex");
          const stored = await reader.js.publish("qbo.webhooks", new Uint8Array(), { msgID: msgId });
          expect(stored.duplicate, "a delivered notification is missing from the stream").toBe(true);
        }
      } finally {
        await sandbox.close();
      }
    },
  );
});
