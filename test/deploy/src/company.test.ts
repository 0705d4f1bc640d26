import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ApiException, CustomObjectsApi } from "@kubernetes/client-node";
import { Buckets, ENTITY_NAMES } from "@qbo-webhooks/contracts";
import { RealmRegistry } from "@qbo-webhooks/entity-store";
import { kvKey, openBucket } from "@qbo-webhooks/messaging";
import { freePort } from "@qbo-webhooks/messaging/testing";
import { type ProcessorService, startProcessor } from "@qbo-webhooks/processor/service";
import { logger, type Pipeline, startPipeline } from "@qbo-webhooks/processor/testing";
import type { Company } from "@qbo-webhooks/sandbox";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { z } from "zod";
import { ControlPlane, k8sTools } from "./control-plane.js";
import { companyReconcilerEnv, companyStatusWrites } from "./reconciler-env.js";

// QuickBooksCompany resources on a real kube-apiserver, as the chart installs them (its CRD, and
// the reconciler's ServiceAccount and Role), managed by reconciler processes against the sandbox:
// what an operator sees in `kubectl get qbo` is the guarantee, checked on the resources, their
// Events, the feed, and the sandbox's own record of which companies are connected.
const CHART = fileURLToPath(new URL("../../../charts/qbo-webhooks", import.meta.url));
const RECONCILER = fileURLToPath(new URL("../../../services/reconciler/dist/reconciler.mjs", import.meta.url));
const NAMESPACE = "companies";
const RELEASE = "qbo";
const ACCOUNT = `${RELEASE}-qbo-webhooks-reconciler`;
const OPERATOR_TOKEN = "company-test-operator-token-0123456789";
const API = { group: "qbo-webhooks.io", version: "v1alpha1", plural: "quickbookscompanies", namespace: NAMESPACE };
const LEASE_MS = 6000;
const tools = await k8sTools();

const Condition = z.object({
  type: z.string(),
  status: z.string(),
  reason: z.string(),
  lastTransitionTime: z.string(),
  observedGeneration: z.number().optional(),
});
const Resource = z.object({
  metadata: z.object({ name: z.string(), generation: z.number(), finalizers: z.array(z.string()).optional() }),
  status: z
    .object({
      observedGeneration: z.number().optional(),
      conditions: z.array(Condition).optional(),
      connectUrl: z.string().optional(),
      lastFullSyncTime: z.string().optional(),
    })
    .optional(),
});
type Resource = z.infer<typeof Resource>;

describe.skipIf(tools.missing !== undefined)(
  `QuickBooksCompany resources on a real kube-apiserver ${tools.missing ? `(skipped: ${tools.missing})` : ""}`,
  () => {
    let plane: ControlPlane;
    let pipeline: Pipeline;
    let processor: ProcessorService;
    let api: CustomObjectsApi;
    let dir: string;
    let registry: RealmRegistry;
    const reconcilers: { child: ChildProcess; port: number; opsPort: number }[] = [];

    beforeAll(async () => {
      plane = await ControlPlane.start(tools);
      // The reconcilers run as the chart's ServiceAccount: what its Role allows is all they may do.
      const { config } = await plane.installAsReconciler(CHART, NAMESPACE);
      api = config.makeApiClient(CustomObjectsApi);
      dir = await mkdtemp(join(tmpdir(), "qbo-company-"));
      await writeFile(join(dir, "kubeconfig"), config.exportConfig());
      pipeline = await startPipeline({ realms: 1 });
      processor = await startProcessor(pipeline.processorConfig("company-p1"), logger);
      registry = new RealmRegistry(await openBucket(pipeline.reader, Buckets.realms, { replicas: 1 }));
      await spawnReconciler("rec-a");
    }, 240_000);
    afterAll(async () => {
      for (const { child } of reconcilers)
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await processor?.close();
      await pipeline?.close();
      await plane?.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    async function spawnReconciler(id: string, extraEnv: Record<string, string> = {}) {
      const [port, opsPort] = [await freePort(), await freePort()];
      const child = spawn(process.execPath, [RECONCILER], {
        env: {
          ...companyReconcilerEnv(pipeline, {
            id,
            port,
            opsPort,
            kubeconfig: join(dir, "kubeconfig"),
            namespace: NAMESPACE,
            leaseName: ACCOUNT,
          }),
          QBO_ENTITIES: "Customer,Invoice",
          OPERATOR_TOKEN,
          QBO_REDIRECT_URI: `http://127.0.0.1:${port}/oauth/callback`,
          LEADER_LEASE_MS: String(LEASE_MS),
          LEADER_RENEW_DEADLINE_MS: "4000",
          LEADER_RETRY_MS: "500",
          CONNECT_URL_BASE: `http://127.0.0.1:${opsPort}`,
          STATUS_MIN_INTERVAL_MS: "1000",
          COMPANY_RESYNC_MS: "5000",
          LOOP_INTERVAL_MS: "500",
          ...extraEnv,
        },
        stdio: ["ignore", "ignore", "inherit"],
      });
      reconcilers.push({ child, port, opsPort });
    }

    const leads = async ({ opsPort }: { opsPort: number }) =>
      /^qbo_reconciler_leader(\{[^}]*\})? 1$/m.test(
        await fetch(`http://127.0.0.1:${opsPort}/metrics`).then(
          (r) => r.text(),
          () => "",
        ),
      );

    const apply = (name: string, spec: Record<string, unknown>) =>
      api.createNamespacedCustomObject({
        ...API,
        body: { apiVersion: "qbo-webhooks.io/v1alpha1", kind: "QuickBooksCompany", metadata: { name }, spec },
      });
    const patchSpec = (name: string, spec: Record<string, unknown>) =>
      plane.kubectl(["patch", "qbo", name, "-n", NAMESPACE, "--type=merge", "-p", JSON.stringify({ spec })]);
    const read = async (name: string): Promise<Resource> =>
      Resource.parse(await api.getNamespacedCustomObject({ ...API, name }));
    const condition = (resource: Resource, type: string) => resource.status?.conditions?.find((c) => c.type === type);
    /** Waits until the resource's condition `type` has `status` (and `reason`), observed at its current generation. */
    const until = async (name: string, type: string, status: string, reason?: string, timeout = 30_000) => {
      let last: Resource | undefined;
      await expect
        .poll(
          async () => {
            last = await read(name);
            const c = condition(last, type);
            return (
              c?.status === status &&
              (reason === undefined || c.reason === reason) &&
              c.observedGeneration === last.metadata.generation &&
              last.status?.observedGeneration === last.metadata.generation
            );
          },
          { timeout, interval: 300 },
        )
        .toBe(true);
      return last as Resource;
    };
    const eventReasons = async (name: string): Promise<string[]> => {
      const events = z
        .object({ items: z.array(z.object({ reason: z.string(), regarding: z.object({ name: z.string() }) })) })
        .parse(JSON.parse(await plane.kubectl(["get", "events.events.k8s.io", "-n", NAMESPACE, "-o", "json"])));
      return events.items.filter((e) => e.regarding.name === name).map((e) => e.reason);
    };
    /** The company's objects in QuickBooks (the sandbox), as "Entity/id" → SyncToken. */
    const truthOf = (company: Company): Record<string, string> =>
      Object.fromEntries(
        Object.entries(company.snapshot()).flatMap(([entity, byId]) =>
          Object.entries(byId ?? {}).map(([id, data]) => [`${entity}/${id}`, data.SyncToken]),
        ),
      );
    const held = async () => {
      const metric = await processor.registry.getSingleMetric("qbo_processor_held_events")?.get();
      return metric?.values[0]?.value ?? 0;
    };
    const refusal = async (spec: Record<string, unknown>) =>
      apply("bad", spec).then(
        () => 0,
        (err: unknown) => (err instanceof ApiException ? err.code : -1),
      );

    it("company - the CRD's entity types are exactly those the pipeline knows", async () => {
      const crd = z
        .object({
          spec: z.object({
            versions: z.array(
              z.object({
                schema: z.object({
                  openAPIV3Schema: z.object({
                    properties: z.object({
                      spec: z.object({
                        properties: z.object({
                          entities: z.object({ items: z.object({ enum: z.array(z.string()) }) }),
                        }),
                      }),
                    }),
                  }),
                }),
              }),
            ),
          }),
        })
        .parse(parse(await readFile(join(CHART, "crds", "quickbookscompanies.yaml"), "utf8")));
      const entities = crd.spec.versions[0]?.schema.openAPIV3Schema.properties.spec.properties.entities.items.enum;
      expect(entities).toEqual([...ENTITY_NAMES]);
    });

    it("company - the chart's CRD refuses invalid specs (422): a realm id not a number, an unknown entity type, a changed realm id", async () => {
      expect(await refusal({ realmId: "abc" })).toBe(422);
      expect(await refusal({ realmId: "123", entities: ["Nope"] })).toBe(422);
      expect(await refusal({ realmId: "123", paused: "yes" })).toBe(422);
      expect(await refusal({ realmId: "123", deletionPolicy: "Shred" })).toBe(422);
      expect(await refusal({})).toBe(422);
      await apply("fixed", { realmId: "4242" });
      const changed = await patchSpec("fixed", { realmId: "4343" }).then(
        () => "accepted",
        (err: unknown) => String(err),
      );
      expect(changed).toMatch(/realmId cannot be changed/);
      await plane.kubectl(["delete", "qbo", "fixed", "-n", NAMESPACE, "--wait=true", "--timeout=60s"]);
    }, 120_000);

    it("company - a whole life: applied → awaiting consent → connected through the OAuth flow → caught up → paused (events held) → resumed in order → deleted (tokens revoked, resource gone)", async () => {
      const company: Company = pipeline.sandbox.createCompany();
      const realmId = company.realmId;
      for (let i = 0; i < 5; i++) company.create("Customer");
      await apply("acme", { realmId, entities: ["Customer", "Invoice"], deletionPolicy: "Delete" });

      // Registered, waiting for someone to consent; the status says where to start.
      const awaiting = await until("acme", "Connected", "False", "AwaitingConsent");
      expect(awaiting.metadata.finalizers).toContain("qbo-webhooks.io/revoke-tokens");
      expect(condition(awaiting, "Ready")?.status).toBe("False");
      const connectUrl = awaiting.status?.connectUrl ?? "";
      expect(connectUrl).toContain(`realmId=${realmId}`);
      expect((await registry.get(realmId))?.status).toBe("awaiting_consent");

      // An operator opens the connect URL (with the operator token), consents, and comes back.
      const started = await fetch(connectUrl, {
        headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
        redirect: "manual",
      });
      expect(started.status).toBe(302);
      const cookie = (started.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
      const approved = await fetch(started.headers.get("location") ?? "", { redirect: "manual" });
      const back = new URL(approved.headers.get("location") ?? "");
      const leader = reconcilers[0];
      const callback = await fetch(`http://127.0.0.1:${leader?.port}/oauth/callback${back.search}`, {
        headers: { cookie },
      });
      expect(callback.status).toBe(200);
      await until("acme", "Connected", "True");
      const caughtUp = await until("acme", "CaughtUp", "True");
      expect(caughtUp.status?.lastFullSyncTime).toBeDefined();
      await until("acme", "Ready", "True");
      await expect.poll(() => eventReasons("acme"), { timeout: 10_000 }).toContain("Connected");
      // What an operator sees at a glance.
      const table = (await plane.kubectl(["get", "qbo", "-n", NAMESPACE])).split("\n");
      expect(table[0]).toMatch(/^NAME\s+REALM\s+READY\s+CONNECTED\s+CAUGHT UP\s+LAST WEBHOOK\s+AGE$/);
      expect(table.find((line) => line.startsWith("acme "))).toMatch(
        new RegExp(`^acme\\s+${realmId}\\s+True\\s+True\\s+True\\s`),
      );
      await expect
        .poll(async () => (await pipeline.feedCopy())[realmId], { timeout: 30_000 })
        .toEqual(truthOf(company));

      // Paused: Ready turns False (Paused); new changes are held, none reaches the feed.
      await patchSpec("acme", { paused: true });
      const paused = await until("acme", "Ready", "False", "Paused");
      expect(paused.metadata.generation).toBe(2);
      const feedBefore = (await pipeline.feedCopy())[realmId];
      for (let i = 0; i < 10; i++) company.create("Customer");
      await expect.poll(held, { timeout: 30_000 }).toBeGreaterThan(0);
      expect((await pipeline.feedCopy())[realmId]).toEqual(feedBefore);

      // Resumed: every held change arrives, in order.
      await patchSpec("acme", { paused: false });
      await until("acme", "Ready", "True");
      await expect
        .poll(async () => (await pipeline.feedCopy())[realmId], { timeout: 30_000 })
        .toEqual(truthOf(company));
      for (const [key, versions] of await pipeline.changeHistories()) {
        expect(versions, key).toEqual([...versions].sort((a, b) => a - b));
      }
      expect(await eventReasons("acme")).toEqual(expect.arrayContaining(["Paused", "Resumed"]));

      // Deleted: the finalizer revokes the tokens at Intuit, forgets the company, then lets go.
      expect(pipeline.sandbox.connectedRealms("app")).toContain(realmId);
      await plane.kubectl(["delete", "qbo", "acme", "-n", NAMESPACE, "--wait=false"]);
      await expect
        .poll(
          () =>
            read("acme").then(
              () => "there",
              (err: unknown) => (err instanceof ApiException ? err.code : String(err)),
            ),
          { timeout: 30_000 },
        )
        .toBe(404);
      expect(pipeline.sandbox.connectedRealms("app")).not.toContain(realmId);
      expect(await registry.get(realmId)).toBeUndefined();
      const tokens = await openBucket(pipeline.reader, Buckets.tokens, { replicas: 1 });
      expect((await tokens.get(kvKey(realmId)))?.operation ?? "none").not.toBe("PUT");
      // deletionPolicy: Delete: our copy of the company is gone too.
      expect((await pipeline.copy())[realmId]).toBeUndefined();
    }, 240_000);

    /** Connects a company through the leader's /connect, as an operator would, without a resource. */
    const connectThrough = async (leader: (typeof reconcilers)[number], realmId: string) => {
      const started = await fetch(`http://127.0.0.1:${leader.opsPort}/connect?realmId=${realmId}&reconnect=true`, {
        headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
        redirect: "manual",
      });
      const cookie = (started.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
      const approved = await fetch(started.headers.get("location") ?? "", { redirect: "manual" });
      const back = new URL(approved.headers.get("location") ?? "");
      const callback = await fetch(`http://127.0.0.1:${leader.port}/oauth/callback${back.search}`, {
        headers: { cookie },
      });
      expect(callback.status).toBe(200);
    };

    it("company - a company connected without a resource (/connect) gets one", async () => {
      const [company] = pipeline.realms as [Company];
      const [leader] = reconcilers as [(typeof reconcilers)[number]];
      await connectThrough(leader, company.realmId);
      await until(`realm-${company.realmId}`, "Connected", "True");
    }, 120_000);

    it("company - a status write that meets a conflict (409: someone changed the resource since it was read) is computed again from a fresh read and lands", async () => {
      const [leader] = reconcilers as [(typeof reconcilers)[number]];
      const conflicts = () => companyStatusWrites(leader.opsPort, "conflict");
      await expect.poll(() => leads(leader), { timeout: 30_000 }).toBe(true);
      const before = await conflicts();
      const names = Array.from({ length: 40 }, (_, i) => `busy-${i}`);
      await Promise.all(
        names.map((name, i) =>
          api.createNamespacedCustomObject({
            ...API,
            body: {
              apiVersion: "qbo-webhooks.io/v1alpha1",
              kind: "QuickBooksCompany",
              metadata: { name, labels: { batch: "busy" } },
              spec: { realmId: String(9_100_000 + i), entities: ["Customer"] },
            },
          }),
        ),
      );
      // While their first statuses wait their turn (20 writes/s), another client keeps changing every
      // one of them: a write prepared on the version read before carries a stale resourceVersion.
      const started = performance.now();
      for (let round = 1; performance.now() - started < 4000; round++)
        await plane.kubectl([
          "annotate",
          "qbo",
          "-n",
          NAMESPACE,
          "-l",
          "batch=busy",
          `touched=${round}`,
          "--overwrite",
        ]);
      for (const name of names) await until(name, "Connected", "False", "AwaitingConsent");
      expect(await conflicts()).toBeGreaterThan(before);
      await plane.kubectl(["delete", "qbo", "-n", NAMESPACE, "-l", "batch=busy", "--timeout=60s"]);
    }, 120_000);

    it("company - two reconcilers: one leads; the leader killed (-9), the other leads within the lease and carries on", async () => {
      await spawnReconciler("rec-b");
      const ready = ({ opsPort }: { opsPort: number }) =>
        fetch(`http://127.0.0.1:${opsPort}/readyz`).then(
          (r) => r.ok,
          () => false,
        );
      await expect
        .poll(async () => (await Promise.all(reconcilers.map(ready))).every(Boolean), { timeout: 20_000 })
        .toBe(true);
      await expect
        .poll(async () => (await Promise.all(reconcilers.map(leads))).filter(Boolean).length, { timeout: 20_000 })
        .toBe(1);
      const [first, second] = reconcilers as [(typeof reconcilers)[number], (typeof reconcilers)[number]];
      const leader = (await leads(first)) ? first : second;
      const other = leader === first ? second : first;
      leader.child.kill("SIGKILL");
      await once(leader.child, "exit");
      const killedAt = performance.now();
      await expect.poll(() => leads(other), { timeout: 30_000, interval: 200 }).toBe(true);
      const takeoverMs = performance.now() - killedAt;
      // The Lease lapses LEASE_MS after its last renewal; the other tries every 500 ms.
      expect(takeoverMs).toBeLessThan(LEASE_MS + 2000);
      // The new leader carries on: a resource applied now is registered by it.
      const company = pipeline.sandbox.createCompany();
      await apply("after-failover", { realmId: company.realmId });
      await until("after-failover", "Connected", "False", "AwaitingConsent");
    }, 120_000);

    it("company - a paused leader (SIGSTOP) is replaced, and when it wakes it has stopped leading while the other leads on", async () => {
      await spawnReconciler("rec-c");
      const alive = reconcilers.filter(({ child }) => child.exitCode === null && child.signalCode === null);
      await expect
        .poll(async () => (await Promise.all(alive.map(leads))).filter(Boolean).length, { timeout: 20_000 })
        .toBe(1);
      const flags = await Promise.all(alive.map(leads));
      const leader = alive[flags.indexOf(true)];
      const other = alive[flags.indexOf(false)];
      if (!leader || !other) throw new Error("no leader, or no other replica");
      leader.child.kill("SIGSTOP");
      const pausedAt = performance.now();
      try {
        await expect.poll(() => leads(other), { timeout: 30_000, interval: 200 }).toBe(true);
        // Measured 9.2 s on this 2-core machine with the API server under load; the kill -9 case above stays within the lease.
        expect(performance.now() - pausedAt).toBeLessThan(2 * LEASE_MS);
      } finally {
        leader.child.kill("SIGCONT");
      }
      // Awake, it finds its renew deadline long past: it has stopped, and the other leads on.
      await expect.poll(() => leads(leader), { timeout: 5000, interval: 100 }).toBe(false);
      expect(await leads(other)).toBe(true);
      const company = pipeline.sandbox.createCompany();
      await apply("after-pause", { realmId: company.realmId });
      await until("after-pause", "Connected", "False", "AwaitingConsent");
    }, 120_000);

    it("company - while no reconciler runs: a resource deleted, webhooks QuickBooks never sent, a company that revoked the app; the next leader finishes the deletion and reports MissedChanges and TokenRefused", async () => {
      const alive = () => reconcilers.filter(({ child }) => child.exitCode === null && child.signalCode === null);
      await expect
        .poll(async () => (await Promise.all(alive().map(leads))).filter(Boolean).length, { timeout: 20_000 })
        .toBe(1);
      const leader = alive()[(await Promise.all(alive().map(leads))).indexOf(true)];
      if (!leader) throw new Error("no leader");
      const [quiet] = pipeline.realms as [Company];
      const [revoking, leaving] = [pipeline.sandbox.createCompany(), pipeline.sandbox.createCompany()];
      for (const company of [revoking, leaving]) {
        company.create("Customer");
        await connectThrough(leader, company.realmId);
        await until(`realm-${company.realmId}`, "Ready", "True");
      }
      await until(`realm-${quiet.realmId}`, "Ready", "True");

      for (const { child } of alive()) {
        child.kill("SIGKILL");
        await once(child, "exit");
      }
      // Meanwhile: an operator deletes a resource; QuickBooks drops the webhooks of three changes;
      // a company disconnects the app in QuickBooks (its tokens are revoked at Intuit).
      await plane.kubectl(["delete", "qbo", `realm-${leaving.realmId}`, "-n", NAMESPACE, "--wait=false"]);
      pipeline.sandbox.setWebhookFaults("app", [{ kind: "drop", percent: 100 }]);
      for (let i = 0; i < 3; i++) quiet.create("Customer");
      pipeline.sandbox.disconnect("app", revoking.realmId);
      await new Promise((resolve) => setTimeout(resolve, 2000));
      pipeline.sandbox.setWebhookFaults("app", []);
      // Nobody runs the finalizer: the resource waits, marked for deletion.
      const waiting = z
        .object({ metadata: z.object({ deletionTimestamp: z.string(), finalizers: z.array(z.string()) }) })
        .parse(await api.getNamespacedCustomObject({ ...API, name: `realm-${leaving.realmId}` }));
      expect(waiting.metadata.finalizers).toContain("qbo-webhooks.io/revoke-tokens");
      expect(pipeline.sandbox.connectedRealms("app")).toContain(leaving.realmId);

      // Changes older than MISSED_GRACE_MS that no webhook announced count as missed.
      await spawnReconciler("rec-d", { MISSED_GRACE_MS: "0" });
      await expect
        .poll(
          () =>
            read(`realm-${leaving.realmId}`).then(
              () => "there",
              (err: unknown) => (err instanceof ApiException ? err.code : String(err)),
            ),
          { timeout: 60_000 },
        )
        .toBe(404);
      expect(pipeline.sandbox.connectedRealms("app")).not.toContain(leaving.realmId);
      expect(await registry.get(leaving.realmId)).toBeUndefined();

      await until(`realm-${quiet.realmId}`, "CaughtUp", "True");
      await expect.poll(() => eventReasons(`realm-${quiet.realmId}`), { timeout: 30_000 }).toContain("MissedChanges");
      await expect
        .poll(async () => (await pipeline.feedCopy())[quiet.realmId], { timeout: 30_000 })
        .toEqual(truthOf(quiet));

      const refused = await until(`realm-${revoking.realmId}`, "TokensValid", "False", "TokensRefused", 60_000);
      expect(condition(refused, "Connected")).toMatchObject({ status: "False", reason: "Disconnected" });
      expect(condition(refused, "Ready")?.status).toBe("False");
      await expect
        .poll(() => eventReasons(`realm-${revoking.realmId}`), { timeout: 30_000 })
        .toEqual(expect.arrayContaining(["TokenRefused", "Disconnected"]));
    }, 240_000);
  },
);
