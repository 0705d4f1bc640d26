import { execFileSync } from "node:child_process";
import { connect } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { findNatsServerBinary, NatsServerProcess } from "./nats-server-process.js";

describe("nats-server-process", () => {
  let server: NatsServerProcess | undefined;
  afterEach(async () => {
    await server?.dispose();
    server = undefined;
  });

  it("nats-server-process - runs a current nats-server (2.12 or later)", () => {
    const version = execFileSync(findNatsServerBinary(), ["--version"]).toString();
    const [, major = 0, minor = 0] = /v(\d+)\.(\d+)/.exec(version)?.map(Number) ?? [];
    expect(major * 100 + minor, version).toBeGreaterThanOrEqual(212);
  });

  it("nats-server-process - starts on loopback with JetStream and accepts clients", async () => {
    server = await NatsServerProcess.start();
    expect(server.url).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
    const nc = await connect({ servers: server.url });
    expect(nc.info?.jetstream).toBe(true);
    expect(nc.info?.max_payload).toBe(8 * 1024 * 1024);
    await nc.close();
  });

  it("nats-server-process - kill and restart keep the port, and clients reconnect", async () => {
    server = await NatsServerProcess.start();
    const port = server.port;
    const nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const reconnected = (async () => {
      for await (const status of nc.status()) if (status.type === "reconnect") return;
    })();
    await server.kill();
    expect(server.running).toBe(false);
    await server.restart();
    await reconnected;
    expect(server.port).toBe(port);
    await nc.flush();
    await nc.close();
  });
});
