import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { Buckets } from "@qbo-webhooks/contracts";
import { RealmRegistry } from "@qbo-webhooks/entity-store";
import { openBucket } from "@qbo-webhooks/messaging";
import { freePort } from "@qbo-webhooks/messaging/testing";
import { type Pipeline, startPipeline } from "@qbo-webhooks/processor/testing";
import { afterAll, beforeAll, expect, it } from "vitest";
import { consent, OPERATOR_TOKEN } from "./testing/reconciler-harness.js";

const MAIN = fileURLToPath(new URL("../dist/reconciler.mjs", import.meta.url));

let pipeline: Pipeline;
const replicas: { child: ChildProcess; port: number; opsPort: number; id: string }[] = [];

async function spawnReconciler(id: string) {
  const [port, opsPort] = [await freePort(), await freePort()];
  const env = pipeline.processorEnv(id);
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH ?? "",
      NATS_URL: env.NATS_URL,
      QBO_API_BASE_URL: env.QBO_API_BASE_URL,
      QBO_CLIENT_ID: env.QBO_CLIENT_ID,
      QBO_CLIENT_SECRET: env.QBO_CLIENT_SECRET,
      TOKEN_ENCRYPTION_KEY: env.TOKEN_ENCRYPTION_KEY,
      QBO_ENVIRONMENT: "sandbox",
      HTTP_PORT: String(port),
      HTTP_HOST: "127.0.0.1",
      OPS_PORT: String(opsPort),
      OPS_HOST: "127.0.0.1",
      OPERATOR_TOKEN,
      QBO_REDIRECT_URI: `http://127.0.0.1:${port}/oauth/callback`,
      RECONCILER_ID: id,
      LEADER_ELECTION: "nats",
      LOOP_INTERVAL_MS: "500",
      LOG_LEVEL: "warn",
    } as Record<string, string>,
    stdio: ["ignore", "ignore", "inherit"],
  });
  replicas.push({ child, port, opsPort, id });
}

const leads = async ({ opsPort: port }: { opsPort: number }) =>
  /^qbo_reconciler_leader(\{[^}]*\})? 1$/m.test(
    await fetch(`http://127.0.0.1:${port}/metrics`).then(
      (r) => r.text(),
      () => "",
    ),
  );

beforeAll(async () => {
  pipeline = await startPipeline({ realms: 2 });
  await spawnReconciler("crash-a");
  await spawnReconciler("crash-b");
});
afterAll(async () => {
  for (const { child } of replicas) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await pipeline?.close();
});

it("leader - killed with -9, it is replaced within 30 s by the other replica, which carries on", {
  timeout: 90_000,
}, async () => {
  const realms = new RealmRegistry(await openBucket(pipeline.reader, Buckets.realms, { replicas: 1 }));
  const ready = ({ opsPort: port }: { opsPort: number }) =>
    fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
  await expect
    .poll(async () => (await Promise.all(replicas.map(ready))).every(Boolean), { timeout: 20_000 })
    .toBe(true);
  await expect
    .poll(async () => (await Promise.all(replicas.map(leads))).filter(Boolean).length, {
      timeout: 20_000,
    })
    .toBe(1);
  const [first, second] = replicas as [(typeof replicas)[number], (typeof replicas)[number]];
  const leader = (await leads(first)) ? first : second;
  const other = leader === first ? second : first;

  // Connected through the follower: any replica serves the flow; the leader runs the CDC.
  const [company] = pipeline.realms;
  if (!company) throw new Error("no company");
  expect((await consent(other, `realmId=${company.realmId}`)).status).toBe(200);
  await expect
    .poll(async () => (await realms.get(company.realmId))?.lastCdcResult, { timeout: 20_000 })
    .toBe("succeeded");

  leader.child.kill("SIGKILL");
  await once(leader.child, "exit");
  const killedAt = performance.now();
  await expect.poll(() => leads(other), { timeout: 30_000, interval: 250 }).toBe(true);
  const takeoverSeconds = (performance.now() - killedAt) / 1000;
  expect(takeoverSeconds).toBeLessThan(30);

  // The new leader acts: a CDC asked for now is run by it.
  const before = (await realms.get(company.realmId))?.lastCdcAt ?? 0;
  await realms.update(company.realmId, (r) => r && { ...r, cdcRequestedAt: Date.now() });
  await expect
    .poll(
      async () => {
        const record = await realms.get(company.realmId);
        return record?.cdcRequestedAt === undefined && (record?.lastCdcAt ?? 0) > before;
      },
      { timeout: 20_000 },
    )
    .toBe(true);
});
