import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { Buckets } from "@qbo-webhooks/contracts";
import { NatsClient, openBucket } from "@qbo-webhooks/messaging";
import { quietPortOffset } from "@qbo-webhooks/messaging/testing";
import { createLogger } from "@qbo-webhooks/observability";
import { StoredTokens, TokenCipher } from "@qbo-webhooks/quickbooks";
import { listen } from "@qbo-webhooks/service-kit";
import { expect, it } from "vitest";
import { z } from "zod";

const START_LOCAL = fileURLToPath(new URL("../../../scripts/start-local.mjs", import.meta.url));
/** Our services' lines, as the launcher prefixes them (the sandbox and nats-server are not ours). */
const OURS = /^\[(ingress|ordering|reconciler|processor-\d+)\] /;

it("secrets - a whole pipeline at debug level (every service its own process) logs none of the secrets it was given or made", {
  timeout: 120_000,
}, async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "qbo-secrets-"));
  let delivered = 0;
  const app = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      delivered++;
      res.writeHead(204).end();
    });
  });
  const appPort = await listen(app, { port: 0, host: "127.0.0.1" });
  const given = {
    QBO_VERIFIER_TOKENS: `verifier-${randomBytes(12).toString("hex")}`,
    QBO_CLIENT_SECRET: `client-secret-${randomBytes(12).toString("hex")}`,
    TOKEN_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    OPERATOR_TOKEN: `operator-${randomBytes(20).toString("hex")}`,
    DELIVERY_SECRET: `whsec_${randomBytes(24).toString("base64")}`,
  };
  const offset = await quietPortOffset();
  const launcher = spawn(process.execPath, [START_LOCAL], {
    env: {
      ...process.env,
      ...given,
      LOCAL_PORT_OFFSET: String(offset),
      LOCAL_DATA_DIR: dataDir,
      LOG_LEVEL: "debug",
      PROCESSORS: "1",
      SANDBOX_TRAFFIC_RATE: "5",
      DELIVERY_URL: `http://127.0.0.1:${appPort}/changes`,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  launcher.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  launcher.stderr.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  try {
    await expect.poll(() => output, { timeout: 60_000 }).toContain("qbo-webhooks is running locally");
    // Changes applied and delivered, signed with the delivery secret, through every service.
    await expect.poll(() => delivered, { timeout: 45_000 }).toBeGreaterThan(20);

    // The secrets made on the way: NATS passwords and every realm's OAuth tokens.
    const passwords = z
      .record(z.string(), z.string())
      .parse(JSON.parse(await readFile(join(dataDir, "nats-passwords.json"), "utf8")));
    const client = await NatsClient.connect({
      servers: [`nats://127.0.0.1:${4222 + offset}`],
      name: "secrets-test",
      logger: createLogger({ service: "test", level: "silent" }),
      auth: { user: "operator", password: passwords.operator ?? "" },
    });
    const tokensKv = await openBucket(client, Buckets.tokens, { replicas: 1 });
    const cipher = new TokenCipher(Buffer.from(given.TOKEN_ENCRYPTION_KEY, "base64"));
    const oauthTokens: string[] = [];
    for await (const key of await tokensKv.keys()) {
      const entry = await tokensKv.get(key);
      if (entry?.operation !== "PUT") continue;
      const tokens = StoredTokens.parse(JSON.parse(cipher.decrypt(entry.string())));
      oauthTokens.push(tokens.accessToken, tokens.refreshToken);
    }
    await client.drain();
    expect(oauthTokens.length).toBeGreaterThanOrEqual(10);

    launcher.kill("SIGTERM");
    await once(launcher, "exit");
    const ours = output.split("\n").filter((line) => OURS.test(line));
    expect(ours.length).toBeGreaterThan(50);
    const secrets = [...Object.values(given), ...Object.values(passwords), ...oauthTokens];
    const leaks = secrets.flatMap((secret) =>
      ours.filter((line) => line.includes(secret)).map((line) => `${secret.slice(0, 6)}…: ${line.slice(0, 120)}`),
    );
    expect(leaks).toEqual([]);
  } finally {
    // The launcher stops the services it started (their own process groups) on SIGTERM.
    if (launcher.exitCode === null && launcher.signalCode === null) {
      launcher.kill("SIGTERM");
      await Promise.race([once(launcher, "exit"), delay(20_000)]);
    }
    app.close();
    await rm(dataDir, { recursive: true, force: true });
  }
});
