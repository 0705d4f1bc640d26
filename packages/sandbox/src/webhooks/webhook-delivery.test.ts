import { isSignedByIntuit, recognizeNotification } from "@qbo-webhooks/contracts";
import { afterEach, describe, expect, it } from "vitest";
import { Sandbox } from "../sandbox.js";
import { startReceiver } from "../webhook-receiver.test-kit.js";
import { CURRENT_RETRY_DELAYS_MS, LEGACY_RETRY_DELAYS_MS } from "./delivery-policy.js";
import type { WebhookAppInput } from "./webhook-app.js";

const TOKEN = "verifier-token";
const MINUTE = 60_000;

async function setup(app: Partial<WebhookAppInput> = {}, speed = 0) {
  const receiver = await startReceiver();
  const sandbox = await Sandbox.start({ speed, seed: 42 });
  sandbox.registerApp({
    appId: "app",
    clientId: "client",
    clientSecret: "secret",
    verifierToken: TOKEN,
    endpointUrl: receiver.url,
    ...app,
  });
  const company = sandbox.createCompany();
  sandbox.connect("app", company.realmId);
  const webhooks = sandbox.webhooks("app");
  /** Moves sandbox time and waits until deliveries due by then are answered. */
  const step = async (ms = 0) => {
    await sandbox.clock.advance(ms);
    await webhooks.settled();
  };
  cleanups.push(async () => {
    await sandbox.close();
    await receiver.close();
  });
  return { receiver, sandbox, company, webhooks, step };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

const eventIds = (body: string): string[] => {
  const recognized = recognizeNotification(Buffer.from(body));
  if (recognized.kind !== "notification") return [];
  return recognized.form === "cloudevents"
    ? recognized.notification.map(
        (e) => `${e.intuitaccountid}/${e.type.entity}/${e.intuitentityid}/${e.type.operation}`,
      )
    : recognized.notification.eventNotifications.flatMap((n) =>
        (n.dataChangeEvent?.entities ?? []).map((e) => `${n.realmId}/${e.name}/${e.id}/${e.operation}`),
      );
};

describe("webhooks: form and signature", () => {
  it("webhooks - CloudEvents notifications are signed so the ingress's verifier accepts them (QBO.md §1b, §2)", async () => {
    const { receiver, company, step } = await setup();
    const customer = company.create("Customer");
    const invoice = company.create("Invoice");
    company.void("Invoice", invoice.Id);
    await step();
    expect(receiver.received).toHaveLength(1);
    const [delivery] = receiver.received;
    expect(
      isSignedByIntuit(Buffer.from(delivery?.body ?? ""), String(delivery?.headers["intuit-signature"]), [TOKEN]),
    ).toBe(true);
    expect(delivery?.headers["content-type"]).toBe("application/cloudevents+json");
    expect(eventIds(delivery?.body ?? "")).toEqual([
      `${company.realmId}/Customer/${customer.Id}/Create`,
      `${company.realmId}/Invoice/${invoice.Id}/Create`,
      `${company.realmId}/Invoice/${invoice.Id}/Void`,
    ]);
  });

  it("webhooks - the legacy form carries one realm per POST, Intuit's headers, and deletedId on Merge (QBO.md §1a, §2)", async () => {
    const { receiver, sandbox, company, step } = await setup({ payloadForm: "legacy" });
    const other = sandbox.createCompany();
    sandbox.connect("app", other.realmId);
    const kept = company.create("Customer");
    const gone = company.create("Customer");
    company.merge("Customer", gone.Id, kept.Id);
    other.create("Vendor");
    await step();
    expect(receiver.received).toHaveLength(2);
    const [first, second] = receiver.json() as {
      eventNotifications: { realmId: string; dataChangeEvent: { entities: Record<string, string>[] } }[];
    }[];
    expect(first?.eventNotifications).toHaveLength(1);
    const merge = first?.eventNotifications[0]?.dataChangeEvent.entities.at(-1);
    expect(merge).toMatchObject({ operation: "Merge", id: kept.Id });
    // Spelled either way, as QuickBooks does (notification-body.test.ts).
    expect(merge?.deletedId ?? merge?.deletedID).toBe(gone.Id);
    expect(second?.eventNotifications[0]?.realmId).toBe(other.realmId);
    expect(receiver.received[0]?.headers).toMatchObject({
      "content-type": "application/json; charset=utf-8",
      "intuit-notification-schema-version": "0.1",
      "user-agent": "intuit_notification_server/0.1",
    });
    expect(receiver.received[0]?.headers["intuit-t-id"]).toEqual(expect.any(String));
  });

  it("webhooks - a bad-signature fault signs with the wrong key (QBO.md §2)", async () => {
    const { receiver, company, webhooks, step } = await setup();
    webhooks.setFaults([{ kind: "badSignature", count: 1 }]);
    company.create("Customer");
    await step();
    const [delivery] = receiver.received;
    expect(
      isSignedByIntuit(Buffer.from(delivery?.body ?? ""), String(delivery?.headers["intuit-signature"]), [TOKEN]),
    ).toBe(false);
  });

  it("webhooks - an endpoint check sends a signed notification with no events (QBO.md §3)", async () => {
    const { receiver, webhooks } = await setup();
    const attempt = await webhooks.ping();
    expect(attempt).toMatchObject({ ok: true, status: 200 });
    expect(recognizeNotification(Buffer.from(receiver.received[0]?.body ?? "x"))).toEqual({ kind: "empty" });
  });
});

describe("webhooks: what is sent, and when", () => {
  it("webhooks - only connected companies, only changes after the connection, only subscribed operations (QBO.md §3)", async () => {
    const { receiver, sandbox, company, step } = await setup({
      subscriptions: { Customer: ["Create"], Invoice: ["Update"] },
    });
    const before = sandbox.createCompany();
    before.create("Customer"); // not connected yet
    sandbox.connect("app", before.realmId);
    before.create("Customer");
    sandbox.createCompany().create("Customer"); // never connected
    company.create("Vendor"); // not subscribed
    const invoice = company.create("Invoice"); // Create not subscribed
    company.update("Invoice", invoice.Id);
    await step();
    expect(receiver.received.flatMap((r) => eventIds(r.body))).toEqual([
      `${before.realmId}/Customer/2/Create`,
      `${company.realmId}/Invoice/${invoice.Id}/Update`,
    ]);
  });

  it("webhooks - production aggregates changes over its window; the sandbox environment sends at once (QBO.md §3)", async () => {
    const { receiver, company, step } = await setup({ environment: "production", aggregationMinutes: 5 });
    company.create("Customer");
    await step(MINUTE);
    company.create("Vendor");
    await step(3 * MINUTE);
    expect(receiver.received).toHaveLength(0);
    await step(MINUTE);
    expect(receiver.received).toHaveLength(1);
    expect(eventIds(receiver.received[0]?.body ?? "")).toHaveLength(2);
  });

  it("webhooks - a notification holds at most 100 events (QBO.md §1b)", async () => {
    const { receiver, company, step } = await setup();
    for (let i = 0; i < 250; i++) company.create("Customer");
    await step();
    expect(receiver.received.map((r) => eventIds(r.body).length)).toEqual([100, 100, 50]);
  });
});

describe("webhooks: the current delivery policy", () => {
  it("webhooks - an answer after 3 s counts as failed and is retried (QBO.md §3)", async () => {
    const { receiver, company, webhooks, step } = await setup();
    receiver.answer(() => ({ status: 200, delayMs: 3300 }));
    company.create("Customer");
    await step();
    expect(webhooks.state().attempts[0]).toMatchObject({ ok: false, error: "no answer within 3000 ms" });
    receiver.answer(() => ({ status: 200 }));
    await step(CURRENT_RETRY_DELAYS_MS[0]);
    expect(webhooks.state().attempts[1]).toMatchObject({ ok: true, attempt: 2 });
  });

  it("webhooks - only 200 counts: a 202 is a failed delivery (QBO.md §3)", async () => {
    const { receiver, company, webhooks, step } = await setup();
    receiver.answer(() => ({ status: 202 }));
    company.create("Customer");
    await step();
    expect(webhooks.state().attempts[0]).toMatchObject({ ok: false, status: 202 });
    expect(webhooks.state().notifications[0]?.state).toBe("retrying");
  });

  it("webhooks - retries the head at 10 s, 20 s, 30 s, 5 min, 20 min, 2 h, 4 h, 6 h, then every 6 h, holding back newer ones (QBO.md §3)", async () => {
    const { receiver, company, webhooks, step } = await setup();
    receiver.answer(() => ({ status: 500 }));
    company.create("Customer");
    await step();
    company.create("Vendor");
    await step();
    const ladder = [...CURRENT_RETRY_DELAYS_MS, 6 * 60 * MINUTE, 6 * 60 * MINUTE];
    for (const delay of ladder) await step(delay);
    const attempts = webhooks.state().attempts;
    expect(attempts).toHaveLength(ladder.length + 1);
    const [head] = webhooks.state().notifications;
    expect(new Set(attempts.map((a) => a.notificationId))).toEqual(new Set([head?.id]));
    expect(attempts.slice(1).map((a, i) => a.at - (attempts[i]?.at ?? 0))).toEqual(ladder);
    expect(webhooks.state().queueDepth).toBe(2);

    receiver.answer(() => ({ status: 200 }));
    await step(6 * 60 * MINUTE);
    expect(receiver.received.slice(-2).map((r) => eventIds(r.body)[0]?.split("/")[1])).toEqual(["Customer", "Vendor"]);
    expect(webhooks.state().queueDepth).toBe(0);
  });
});

describe("webhooks: the legacy delivery policy", () => {
  it("webhooks - retries after 20, 30 and 50 minutes, then drops the message and blacklists the endpoint (QBO.md §3)", async () => {
    const { receiver, company, webhooks, step } = await setup({ policy: "legacy" });
    receiver.answer(() => ({ status: 503 }));
    company.create("Customer");
    await step();
    for (const delay of LEGACY_RETRY_DELAYS_MS) await step(delay);
    const attempts = webhooks.state().attempts;
    expect(attempts.slice(1).map((a, i) => a.at - (attempts[i]?.at ?? 0))).toEqual([...LEGACY_RETRY_DELAYS_MS]);
    expect(webhooks.state()).toMatchObject({ blacklisted: true });
    expect(webhooks.state().notifications[0]).toMatchObject({ state: "dropped", droppedReason: "retries exhausted" });

    receiver.answer(() => ({ status: 200 }));
    company.create("Vendor");
    await step(24 * 60 * MINUTE);
    expect(webhooks.state().notifications[1]).toMatchObject({
      state: "dropped",
      droppedReason: "endpoint blacklisted",
    });
    expect(receiver.received).toHaveLength(4);

    webhooks.reenable();
    company.create("Item");
    await step();
    expect(webhooks.state().notifications[2]?.state).toBe("delivered");
  });

  it("webhooks - legacy does not hold newer notifications behind a failing one (QBO.md §3)", async () => {
    const { receiver, company, webhooks, step } = await setup({ policy: "legacy" });
    let failFirst = true;
    receiver.answer(() => {
      const status = failFirst ? 500 : 200;
      failFirst = false;
      return { status };
    });
    company.create("Customer");
    await step();
    company.create("Vendor");
    await step();
    expect(webhooks.state().notifications.map((n) => n.state)).toEqual(["retrying", "delivered"]);
    await step(LEGACY_RETRY_DELAYS_MS[0]);
    expect(webhooks.state().notifications.map((n) => n.state)).toEqual(["delivered", "delivered"]);
  });

  it("webhooks - a blacklisted endpoint left failing for a day is marked inactive (QBO.md §3)", async () => {
    const { receiver, company, webhooks, step } = await setup({ policy: "legacy" });
    receiver.answer(() => ({ status: 500 }));
    company.create("Customer");
    await step();
    for (const delay of LEGACY_RETRY_DELAYS_MS) await step(delay);
    expect(webhooks.state()).toMatchObject({ blacklisted: true, inactive: false });
    await step(24 * 60 * MINUTE - 100 * MINUTE);
    expect(webhooks.state().inactive).toBe(true);
  });

  it("webhooks - an endpoint re-enabled but still failing for a day is marked inactive (QBO.md §3)", async () => {
    const { receiver, company, webhooks, step } = await setup({ policy: "legacy" });
    receiver.answer(() => ({ status: 500 }));
    for (let hours = 0; hours < 26 && !webhooks.state().inactive; hours += 100 / 60) {
      company.create("Customer");
      await step();
      for (const delay of LEGACY_RETRY_DELAYS_MS) await step(delay);
      if (!webhooks.state().inactive) webhooks.reenable();
    }
    expect(webhooks.state().inactive).toBe(true);
  });

  it("webhooks - at 3000x the legacy ladder (100 minutes, QBO.md §3) runs in about 2 s of real time", async () => {
    const { receiver, company, webhooks } = await setup({ policy: "legacy" }, 3000);
    receiver.answer(() => ({ status: 500 }));
    company.create("Customer");
    await expect.poll(() => webhooks.state().blacklisted, { timeout: 10_000, interval: 100 }).toBe(true);
    expect(webhooks.state().attempts).toHaveLength(4);
  });
});

describe("webhooks: the stepped clock", () => {
  it("webhooks - at speed 0 the first change after connecting is announced (times are whole milliseconds)", async () => {
    const receiver = await startReceiver();
    const sandbox = await Sandbox.start({ speed: 1 });
    cleanups.push(async () => {
      await sandbox.close();
      await receiver.close();
    });
    await new Promise((resolve) => setTimeout(resolve, 5));
    sandbox.clock.setSpeed(0);
    sandbox.registerApp({
      appId: "app",
      clientId: "c",
      clientSecret: "s",
      verifierToken: TOKEN,
      endpointUrl: receiver.url,
    });
    const company = sandbox.createCompany();
    sandbox.connect("app", company.realmId);
    company.create("Customer");
    await sandbox.clock.advance(0);
    await sandbox.webhooks("app").settled();
    expect(receiver.received).toHaveLength(1);
  });
});

describe("webhooks: faults", () => {
  it.each([["count"], ["percent"]] as const)(
    "webhooks - drop by %s loses the notification (QBO.md §3)",
    async (how) => {
      const { receiver, company, webhooks, step } = await setup();
      webhooks.setFaults([how === "count" ? { kind: "drop", count: 1 } : { kind: "drop", percent: 100 }]);
      company.create("Customer");
      await step();
      expect(receiver.received).toHaveLength(0);
      expect(webhooks.state().notifications[0]).toMatchObject({ state: "dropped", droppedReason: "fault: drop" });
    },
  );

  it("webhooks - faults apply to changes made while they are set, even when lifted before the notification goes out", async () => {
    const { receiver, company, webhooks, step } = await setup();
    webhooks.setFaults([{ kind: "drop", percent: 100 }]);
    company.create("Customer");
    webhooks.setFaults([]);
    const kept = company.create("Vendor");
    await step();
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0]?.body).toContain(`"${kept.Id}"`);
    expect(webhooks.state().notifications[0]).toMatchObject({ state: "dropped", droppedReason: "fault: drop" });
  });

  it("webhooks - duplicate delivers the same body, same event ids, twice (QBO.md §1b: retries resend the same id)", async () => {
    const { receiver, company, webhooks, step } = await setup();
    webhooks.setFaults([{ kind: "duplicate", count: 1 }]);
    company.create("Customer");
    await step();
    expect(receiver.received).toHaveLength(2);
    expect(receiver.received[0]?.body).toBe(receiver.received[1]?.body);
  });

  it("webhooks - reorder swaps a notification with the next one (QBO.md §3: order not guaranteed)", async () => {
    const { receiver, company, webhooks, step } = await setup();
    webhooks.setFaults([{ kind: "reorder", count: 1 }]);
    company.create("Customer");
    await step();
    company.create("Vendor");
    await step();
    expect(receiver.received.map((r) => eventIds(r.body)[0]?.split("/")[1])).toEqual(["Vendor", "Customer"]);
  });

  it("webhooks - reorder sends a held notification late when nothing follows it", async () => {
    const { receiver, company, webhooks, step } = await setup();
    webhooks.setFaults([{ kind: "reorder", count: 1 }]);
    company.create("Customer");
    await step();
    expect(receiver.received).toHaveLength(0);
    await step(10_000);
    expect(receiver.received).toHaveLength(1);
  });

  it("webhooks - delay holds a notification back so later ones overtake it (QBO.md §3: trust the timestamp)", async () => {
    const { receiver, company, webhooks, step } = await setup();
    webhooks.setFaults([{ kind: "delay", count: 1, delayMs: 5 * MINUTE }]);
    company.create("Customer");
    await step();
    company.create("Vendor");
    await step();
    expect(receiver.received).toHaveLength(1);
    await step(5 * MINUTE);
    expect(receiver.received.map((r) => eventIds(r.body)[0]?.split("/")[1])).toEqual(["Vendor", "Customer"]);
  });

  it("webhooks - pause holds deliveries, resume sends them in order; the history shows attempts and queue depth (QBO.md §3)", async () => {
    const { receiver, company, webhooks, step } = await setup();
    webhooks.pause();
    company.create("Customer");
    await step();
    company.create("Vendor");
    await step();
    expect(receiver.received).toHaveLength(0);
    expect(webhooks.state()).toMatchObject({ paused: true, queueDepth: 2 });
    webhooks.resume();
    await step();
    expect(receiver.received).toHaveLength(2);
    expect(webhooks.state().attempts.map((a) => a.ok)).toEqual([true, true]);
    expect(webhooks.state().queueDepth).toBe(0);
  });
});
