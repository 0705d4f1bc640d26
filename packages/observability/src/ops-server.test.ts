import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { Counter } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { createMetricsRegistry } from "./metrics-registry.js";
import { createOpsServer } from "./ops-server.js";
import { VERSION } from "./version.js";

describe("ops-server", () => {
  const servers: ReturnType<typeof createOpsServer>[] = [];
  afterEach(() => {
    for (const server of servers.splice(0)) server.close();
  });

  async function serve(isReady: () => boolean, natsConnected: () => boolean = isReady) {
    const registry = createMetricsRegistry("test");
    new Counter({ name: "qbo_test_total", help: "test", registers: [registry] }).inc();
    const server = createOpsServer({ registry, isReady, natsConnected }).listen(0, "127.0.0.1");
    servers.push(server);
    await once(server, "listening");
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it("ops-server - healthz answers 200 whatever readiness says", async () => {
    const base = await serve(() => false);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it("ops-server - readyz follows the readiness check", async () => {
    let ready = false;
    const base = await serve(() => ready);
    expect((await fetch(`${base}/readyz`)).status).toBe(503);
    ready = true;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
  });

  it("ops-server - metrics serves the registry in Prometheus text with the service label", async () => {
    const base = await serve(() => true);
    const response = await fetch(`${base}/metrics`);
    expect(response.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await response.text();
    expect(text).toContain('qbo_test_total{service="test"} 1');
    expect(text).toContain("process_cpu_seconds_total");
  });

  it("ops-server - qbo_ready says what readyz answers, qbo_nats_connected the connection, qbo_build_info the version", async () => {
    let [ready, connected] = [false, true];
    const base = await serve(
      () => ready,
      () => connected,
    );
    const metrics = async () => (await fetch(`${base}/metrics`)).text();
    expect(await metrics()).toContain('qbo_ready{service="test"} 0');
    expect(await metrics()).toContain('qbo_nats_connected{service="test"} 1');
    [ready, connected] = [true, false];
    expect(await metrics()).toContain('qbo_ready{service="test"} 1');
    expect(await metrics()).toContain('qbo_nats_connected{service="test"} 0');
    expect(await metrics()).toContain(`qbo_build_info{version="${VERSION}",service="test"} 1`);
  });

  it("ops-server - other paths are 404", async () => {
    const base = await serve(() => true);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });
});
