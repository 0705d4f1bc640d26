import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Sandbox } from "../sandbox.js";
import { startReceiver } from "../webhook-receiver.test-kit.js";

// Everything a test or demo drives through HTTP: companies, changes, ground truth, apps, faults, clock.
describe("control API", () => {
  let sandbox: Sandbox;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  beforeEach(async () => {
    sandbox = await Sandbox.start({ speed: 0 });
    receiver = await startReceiver();
  });
  afterEach(async () => {
    await sandbox.close();
    await receiver.close();
  });

  // biome-ignore lint/suspicious/noExplicitAny: loose JSON for assertions; the API's types are checked where it is built.
  type Json = Record<string, any>;
  const call = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }> => {
    const response = await fetch(`${sandbox.url}/_sandbox${path}`, {
      method,
      headers: { "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, body: response.status === 204 ? {} : ((await response.json()) as Json) };
  };

  it("control - creates a company, changes it, and reads the ground truth", async () => {
    const { body: company } = await call("POST", "/companies", { realmId: "4620816365" });
    expect(company).toMatchObject({ realmId: "4620816365" });
    const { body: created } = await call("POST", "/companies/4620816365/changes", [
      { entity: "Customer", operation: "Create", fields: { DisplayName: "Amy" } },
      { entity: "Customer", operation: "Create" },
    ]);
    expect(created).toHaveLength(2);
    await call("POST", "/companies/4620816365/changes", {
      entity: "Customer",
      operation: "Merge",
      id: "2",
      intoId: "1",
    });
    const { body: truth } = await call("GET", "/companies/4620816365");
    expect(Object.keys(truth.Customer)).toEqual(["1"]);
    expect(truth.Customer["1"]).toMatchObject({ DisplayName: "Amy", SyncToken: "1" });
  });

  it("control - answers bad requests with 4xx and a reason", async () => {
    await call("POST", "/companies", { realmId: "1" });
    expect((await call("GET", "/companies/nope")).status).toBe(404);
    expect(
      (await call("POST", "/companies/1/changes", { entity: "Customer", operation: "Void", id: "1" })).status,
    ).toBe(422);
    const bad = await call("POST", "/companies/1/changes", { entity: "Widget", operation: "Create" });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/entity/);
  });

  it("control - registers an app, connects a company, sets faults, steps the clock and reads deliveries", async () => {
    await call("POST", "/companies", { realmId: "77" });
    const app = await call("POST", "/apps", {
      appId: "a",
      clientId: "c",
      clientSecret: "s",
      verifierToken: "v",
      endpointUrl: receiver.url,
      policy: "legacy",
    });
    expect(app.body).toMatchObject({ policy: "legacy", payloadForm: "cloudevents", environment: "sandbox" });
    const tokens = await call("POST", "/apps/a/connections", { realmId: "77" });
    expect(tokens.body).toMatchObject({ token_type: "bearer" });
    expect((await call("PUT", "/apps/a/faults", [{ kind: "drop", count: 1 }])).status).toBe(200);
    await call("POST", "/companies/77/changes", { entity: "Invoice", operation: "Create" });
    await call("POST", "/clock", { advanceMs: 1000 });
    await call("POST", "/companies/77/changes", { entity: "Invoice", operation: "Create" });
    const clock = await call("POST", "/clock", { advanceMs: 1000 });
    expect(clock.body.speed).toBe(0);
    await sandbox.webhooks("a").settled();
    const { body: deliveries } = await call("GET", "/apps/a/deliveries");
    expect(deliveries.notifications.map((n: { state: string }) => n.state)).toEqual(["dropped", "delivered"]);
    expect((await call("POST", "/apps/a/ping")).body).toMatchObject({ ok: true, status: 200 });
    expect((await call("POST", "/apps/a/pause")).body).toMatchObject({ paused: true });
    expect((await call("POST", "/apps/a/explode")).status).toBe(400);
  });

  it("control - an unannounced change sends no webhook and answers with the notifications QuickBooks would have sent", async () => {
    await call("POST", "/companies", { realmId: "78" });
    await call("POST", "/apps", {
      appId: "a",
      clientId: "c",
      clientSecret: "s",
      verifierToken: "v",
      endpointUrl: receiver.url,
    });
    await call("POST", "/apps/a/connections", { realmId: "78" });
    const { body } = await call("POST", "/companies/78/unannounced-changes", {
      entity: "Invoice",
      operation: "Create",
    });
    await call("POST", "/clock", { advanceMs: 1000 });
    await sandbox.webhooks("a").settled();
    expect(receiver.received).toHaveLength(0);
    expect(body.entity).toMatchObject({ Id: body.changes[0].id, SyncToken: "0" });
    const [cloudEvent] = JSON.parse(body.notifications.cloudevents[0]);
    expect(cloudEvent).toMatchObject({
      type: "qbo.invoice.created.v1",
      intuitaccountid: "78",
      intuitentityid: body.entity.Id,
    });
    // QuickBooks gives LastUpdatedTime to the second, the event its own time to the millisecond.
    expect(Math.floor(Date.parse(cloudEvent.time) / 1000) * 1000).toBe(
      Date.parse(body.entity.MetaData.LastUpdatedTime),
    );
    const legacy = JSON.parse(body.notifications.legacy[0]);
    expect(legacy.eventNotifications[0].dataChangeEvent.entities[0]).toMatchObject({
      name: "Invoice",
      operation: "Create",
    });
  });

  it("control - sets API behaviour and reads stats", async () => {
    const { body } = await call("PUT", "/api-behaviour", { latencyMs: 100, throttleStatus: 403 });
    expect(body).toMatchObject({ latencyMs: 100, throttleStatus: 403, requestsPerMinute: 500 });
    expect((await call("GET", "/stats")).body).toMatchObject({ requests: {}, throttled: {}, tokenRequests: 0 });
  });
});
