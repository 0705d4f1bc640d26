import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { Streams, signIntuitPayload } from "@qbo-webhooks/contracts";
import { sampleCloudEventBody } from "@qbo-webhooks/contracts/testing";
import { NatsClient } from "@qbo-webhooks/messaging";
import { freePort, NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import { createLogger } from "@qbo-webhooks/observability";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const MAIN = fileURLToPath(new URL("../dist/ingress.mjs", import.meta.url));
const TOKEN = "process-test-token";

function runIngress(env: Record<string, string>): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  return Object.assign(child, { output: () => output });
}

describe("ingress process", () => {
  it("main - exits 1 naming every bad variable before connecting to anything", async () => {
    const child = runIngress({ HTTP_PORT: "eighty", LOG_LEVEL: "loud" });
    const [code] = await once(child, "exit");
    expect(code).toBe(1);
    expect(child.output()).toMatch(/QBO_VERIFIER_TOKENS is required/);
    expect(child.output()).toMatch(/HTTP_PORT must be a whole number/);
    expect(child.output()).toMatch(/LOG_LEVEL must be one of/);
  });

  describe("with NATS", () => {
    let server: NatsServerProcess;
    let reader: NatsClient;
    const logger = createLogger({ service: "test", level: "silent" });
    beforeAll(async () => {
      server = await NatsServerProcess.start();
      reader = await NatsClient.connect({ servers: [server.url], name: "test-reader", logger });
    });
    afterAll(async () => {
      await reader?.drain();
      await server?.dispose();
    });

    it("main - SIGTERM stops intake, loses no accepted request, and exits 0 within 10 s", async () => {
      const [port, opsPort] = [await freePort(), await freePort()];
      const child = runIngress({
        NATS_URL: server.url,
        HTTP_PORT: String(port),
        OPS_PORT: String(opsPort),
        QBO_VERIFIER_TOKENS: TOKEN,
      });
      const base = `http://127.0.0.1:${port}`;
      await expect
        .poll(async () => (await fetch(`http://127.0.0.1:${opsPort}/readyz`).catch(() => undefined))?.status, {
          timeout: 15_000,
        })
        .toBe(200);

      const accepted: string[] = [];
      let refused = 0;
      let sent = 0;
      const sendLoop = async () => {
        for (;;) {
          const body = sampleCloudEventBody(5);
          sent++;
          try {
            const response = await fetch(`${base}/webhooks/quickbooks`, {
              method: "POST",
              headers: { "intuit-signature": signIntuitPayload(body, TOKEN) },
              body,
            });
            if (response.status === 200) accepted.push(body);
          } catch {
            // The server stopped accepting connections: expected after SIGTERM.
            refused++;
            return;
          }
        }
      };
      const loops = Array.from({ length: 8 }, sendLoop);
      // Other test files load the CPU beside this one (the fuzz test), so wait for intake by count, not by time.
      await expect.poll(() => accepted.length, { timeout: 30_000 }).toBeGreaterThan(50);
      const signalled = performance.now();
      child.kill("SIGTERM");
      const [code] = await once(child, "exit");
      const shutdownMs = performance.now() - signalled;
      await Promise.all(loops);

      expect(code, child.output()).toBe(0);
      expect(shutdownMs).toBeLessThan(10_000);
      expect(refused).toBe(8);
      expect(child.output()).toContain("shut down cleanly");
      expect(child.output()).not.toContain(TOKEN);
      const info = await reader.jsm.streams.info(Streams.webhooks.name);
      expect(info.state.messages).toBeGreaterThanOrEqual(accepted.length);
      for (const body of accepted) {
        const msgId = createHash("sha256").update(body).digest("hex");
        const stored = await reader.js.publish("qbo.webhooks", new Uint8Array(), { msgID: msgId });
        // Publishing the same id again is a duplicate only if the accepted notification is in the stream.
        expect(stored.duplicate, `accepted but not stored: ${msgId}`).toBe(true);
      }
      expect(sent).toBeGreaterThan(accepted.length);
    });
  });
});
