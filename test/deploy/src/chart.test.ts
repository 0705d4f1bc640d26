import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { VERSION } from "@qbo-webhooks/observability";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { z } from "zod";
import { ControlPlane, k8sTools } from "./control-plane.js";
import { RUNTIME_VARIABLES, SERVICE_VARIABLES } from "./service-variables.js";

const CHART = fileURLToPath(new URL("../../../charts/qbo-webhooks", import.meta.url));
const run = promisify(execFile);
const tools = await k8sTools();
const { missing, bin } = tools;

/** The values CI renders, each a way users install the chart. */
const MATRIX: Record<string, string[]> = {
  defaults: ["--set", "secrets.verifierTokens=v", "--set", "secrets.clientId=c", "--set", "secrets.clientSecret=s"],
  "external NATS (production)": [
    "--set",
    "secrets.existingSecret=qbo-keys",
    "--set",
    "nats.url=nats://nats.nats.svc:4222",
    "--set",
    "nats.streamReplicas=3",
    "--set",
    "exposure.ingress.enabled=true",
    "--set",
    "exposure.ingress.host=qbo.example.com",
    "--set",
    "exposure.ingress.className=nginx",
    "--set",
    "quickbooks.redirectUri=https://qbo.example.com/oauth/callback",
  ],
  "KEDA on": ["--set", "secrets.existingSecret=qbo-keys", "--set", "autoscaling.keda.enabled=true"],
  "monitoring on": [
    "--set",
    "secrets.existingSecret=qbo-keys",
    "--set",
    "serviceMonitor.enabled=true",
    "--set",
    "serviceMonitor.release=kube-prometheus-stack",
    "--set",
    "alerts.enabled=true",
    "--set",
    "alerts.deliveryPolicy=legacy",
    "--set",
    "alerts.release=kube-prometheus-stack",
    "--set",
    "alerts.routing.enabled=true",
    "--set",
    "alerts.routing.pagerduty.routingKeySecret.name=pagerduty",
    "--set",
    "alerts.routing.ticket.slack.apiUrlSecret.name=slack",
    "--set",
    "alerts.routing.ticket.slack.channel=#qbo-webhooks",
    "--set",
    "dashboards.enabled=true",
    "--set",
    "autoscaling.hpa.enabled=true",
    "--set",
    "exposure.httpRoute.enabled=true",
    "--set",
    "exposure.httpRoute.parentRefs[0].name=public",
  ],
  "sandbox on": ["--set", "sandbox.enabled=true", "--set", "quickbooks.environment=sandbox"],
  "every service configured": [
    "--set",
    "secrets.existingSecret=qbo-keys",
    "--set",
    "delivery.url=https://app.example.com/changes",
    "--set",
    "processor.config.COALESCE_MS=200",
    "--set",
    "reconciler.config.DAILY_CDC=false",
    "--set",
    "ingress.config.MAX_BODY_BYTES=1048576",
    "--set",
    "ordering.config.SHUTDOWN_DEADLINE_MS=20000",
    "--set",
    "quickbooks.entities=Customer\\,Invoice",
  ],
};

const helm = (args: string[]) => run(join(bin, "helm3"), args, { maxBuffer: 64 * 1024 * 1024 });
const template = async (values: string[]) =>
  (await helm(["template", "qbo", CHART, "--namespace", "qbo", "--kube-version", "1.37.0", ...values])).stdout;
/** What the tests read of a rendered object; the rest passes through unchecked. */
const Rendered = z.looseObject({
  kind: z.string(),
  metadata: z.looseObject({ name: z.string() }),
  spec: z.record(z.string(), z.unknown()).optional(),
});
const PodTemplate = z.looseObject({
  metadata: z.looseObject({ annotations: z.record(z.string(), z.string()) }),
  spec: z.looseObject({
    containers: z.array(
      z.looseObject({
        args: z.array(z.string()).optional(),
        env: z.array(z.looseObject({ name: z.string(), value: z.string().optional() })),
      }),
    ),
  }),
});
const ScaledObjectSpec = z.looseObject({
  maxReplicaCount: z.number(),
  triggers: z.array(z.looseObject({ type: z.string(), metadata: z.record(z.string(), z.string()) })),
});
const ValuesSchema = z.object({
  properties: z.record(
    z.string(),
    z.looseObject({
      properties: z
        .looseObject({ config: z.looseObject({ propertyNames: z.object({ enum: z.array(z.string()) }) }).optional() })
        .optional(),
    }),
  ),
});
const objects = (yaml: string) =>
  parseAllDocuments(yaml)
    .map((doc) => doc.toJS())
    .filter((o) => o !== null)
    .map((o) => Rendered.parse(o));
const podTemplate = (o: z.infer<typeof Rendered> | undefined) => PodTemplate.parse(o?.spec?.template);

describe.skipIf(missing !== undefined)(`the chart ${missing ? `(skipped: ${missing})` : ""}`, () => {
  it("chart - helm lint --strict passes", async () => {
    const { stdout } = await helm(["lint", "--strict", CHART, ...(MATRIX.defaults ?? [])]);
    expect(stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  it("chart - every render of the values matrix is valid for Kubernetes 1.37 and the upstream CRDs (kubeconform, offline, strict)", async () => {
    const dir = tools.schemas;
    for (const [name, values] of Object.entries(MATRIX)) {
      const rendered = await template(values);
      const child = run(join(bin, "kubeconform"), [
        "-strict",
        "-summary",
        "-kubernetes-version",
        "1.37.0",
        "-schema-location",
        `${dir}/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json`,
        "-schema-location",
        `${dir}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json`,
        "-",
      ]);
      child.child.stdin?.end(rendered);
      const { stdout } = await child.catch((err: { stdout: string }) => {
        throw new Error(`${name}: ${err.stdout}`);
      });
      expect(stdout, name).toMatch(/Invalid: 0, Errors: 0, Skipped: 0/);
    }
  });

  it("chart - node starts with the flags and NODE_OPTIONS it gives each service, before the service's program", async () => {
    const rendered = objects(await template(MATRIX.defaults ?? []));
    for (const service of Object.keys(SERVICE_VARIABLES)) {
      const deployment = rendered.find(
        (o) => o.kind === "Deployment" && o.metadata.name === `qbo-qbo-webhooks-${service}`,
      );
      const [container] = podTemplate(deployment).spec.containers;
      const args = container?.args ?? [];
      expect(args.at(-1), service).toBe(`/app/${service}.mjs`);
      const options = container?.env.find((e) => e.name === "NODE_OPTIONS")?.value ?? "";
      // Node refuses an unknown flag, or one NODE_OPTIONS may not carry, and exits 9.
      await expect(
        run(process.execPath, [...args.slice(0, -1), "-e", ""], { env: { ...process.env, NODE_OPTIONS: options } }),
        `${service}: node ${args.slice(0, -1).join(" ")} with NODE_OPTIONS=${options}`,
      ).resolves.toBeDefined();
    }
  });

  it("chart - the variables it sets and accepts are the ones each service reads (a renamed variable fails here)", async () => {
    const schema = ValuesSchema.parse(JSON.parse(await readFile(join(CHART, "values.schema.json"), "utf8")));
    const rendered = objects(
      await template([
        ...(MATRIX["every service configured"] ?? []),
        "--set",
        "sandbox.enabled=true",
        "--set",
        "quickbooks.environment=sandbox",
      ]),
    );
    for (const [service, reads] of Object.entries(SERVICE_VARIABLES)) {
      const deployment = rendered.find(
        (o) => o.kind === "Deployment" && o.metadata?.name === `qbo-qbo-webhooks-${service}`,
      );
      const set = podTemplate(deployment).spec.containers.flatMap((c) => c.env.map((e) => e.name));
      expect(
        set.filter((name) => !reads.includes(name) && !RUNTIME_VARIABLES.includes(name)),
        `${service}: set by the chart but not read`,
      ).toEqual([]);
      const accepted = schema.properties[service]?.properties?.config?.propertyNames.enum ?? [];
      expect(
        accepted.filter((name) => !reads.includes(name)),
        `${service}: accepted in ${service}.config but not read`,
      ).toEqual([]);
      // Everything the service reads can be set: by the chart itself or through <service>.config.
      expect(
        reads.filter((name) => !set.includes(name) && !accepted.includes(name)),
        `${service}: cannot be set`,
      ).toEqual([]);
    }
  });

  it("chart - KEDA scales processors on the summed backlog and on freshness, bounded by the partitions (a trigger's metadata is free-form: its keys are checked here)", async () => {
    const rendered = objects(await template(MATRIX["KEDA on"] ?? []));
    const scaled = ScaledObjectSpec.parse(rendered.find((o) => o.kind === "ScaledObject")?.spec);
    expect(scaled.maxReplicaCount).toBeLessThanOrEqual(64);
    expect(scaled.triggers.map((t) => [t.type, Object.keys(t.metadata).sort()])).toEqual([
      ["prometheus", ["query", "serverAddress", "threshold"]],
      ["prometheus", ["query", "serverAddress", "threshold"]],
    ]);
    expect(scaled.triggers[0]?.metadata.query).toMatch(/^sum\(qbo_consumer_pending\{.*stream="QBO_EVENTS"/);
    expect(scaled.triggers[1]?.metadata.query).toMatch(/qbo_event_freshness_seconds_bucket/);
    // KEDA makes the HPA: the Deployment leaves replicas to it.
    const processor = rendered.find((o) => o.kind === "Deployment" && o.metadata?.name?.endsWith("-processor"));
    expect(processor?.spec).not.toHaveProperty("replicas");
  });

  it("chart - the PrometheusRule holds the generated rules of the chosen delivery policy, linking the runbooks given", async () => {
    const rule = async (values: string[]) =>
      objects(await template([...(MATRIX.defaults ?? []), "--set", "alerts.enabled=true", ...values])).find(
        (o) => o.kind === "PrometheusRule",
      );
    const alertNames = (o: z.infer<typeof Rendered> | undefined) =>
      [...JSON.stringify(o).matchAll(/"alert":"(\w+)"/g)].map((m) => m[1]);
    for (const policy of ["current", "legacy"]) {
      const file = parse(await readFile(join(CHART, `files/prometheus/qbo-webhooks-rules-${policy}.yaml`), "utf8"));
      const rendered = await rule(["--set", `alerts.deliveryPolicy=${policy}`]);
      expect(rendered?.spec?.groups).toEqual(z.object({ groups: z.array(z.unknown()) }).parse(file).groups);
    }
    expect(alertNames(await rule([]))).toContain("QboQuickBooksBackoffRisk");
    expect(alertNames(await rule(["--set", "alerts.deliveryPolicy=legacy"]))).toContain("QboQuickBooksBlacklistRisk");
    const moved = JSON.stringify(await rule(["--set", "alerts.runbookBaseUrl=https://wiki.example.com/qbo/"]));
    expect(moved).toContain("https://wiki.example.com/qbo/QboIngressDown.md");
    expect(moved).not.toContain("github.com");
  });

  it("chart - its appVersion is the version the services report in qbo_build_info", async () => {
    const chart = z.object({ appVersion: z.string() }).parse(parse(await readFile(join(CHART, "Chart.yaml"), "utf8")));
    expect(chart.appVersion).toBe(VERSION);
  });

  it("chart - ServiceMonitors come when the cluster has the API (auto), and pods roll when their configuration changes", async () => {
    const kinds = async (values: string[]) => objects(await template(values)).map((o) => o.kind);
    expect(await kinds(MATRIX.defaults ?? [])).not.toContain("ServiceMonitor");
    const withApi = await kinds([
      ...(MATRIX.defaults ?? []),
      "--api-versions",
      "monitoring.coreos.com/v1/ServiceMonitor",
    ]);
    expect(withApi.filter((kind) => kind === "ServiceMonitor")).toHaveLength(4);
    expect(withApi).not.toContain("PrometheusRule");
    expect(
      await kinds([...(MATRIX.defaults ?? []), "--api-versions", "monitoring.coreos.com/v1/PrometheusRule"]),
    ).toContain("PrometheusRule");
    const checksum = async (values: string[]) =>
      objects(await template([...(MATRIX.defaults ?? []), ...values]))
        .filter((o) => o.kind === "Deployment")
        .map((o) => podTemplate(o).metadata.annotations["checksum/config"]);
    const before = await checksum([]);
    const after = await checksum(["--set", "processor.config.COALESCE_MS=300"]);
    expect(after[2]).not.toBe(before[2]);
  });

  it("chart - refuses what cannot work: a typo in config, the sandbox in production, more processors than partitions", async () => {
    const refused = (values: string[]) =>
      template(values).then(
        () => "",
        (err: { stderr: string }) => err.stderr,
      );
    expect(await refused([...(MATRIX.defaults ?? []), "--set", "processor.config.COALESCE=1"])).toMatch(/COALESCE/);
    expect(await refused(["--set", "sandbox.enabled=true"])).toMatch(/quickbooks.environment=sandbox/);
    expect(
      await refused([
        ...(MATRIX.defaults ?? []),
        "--set",
        "autoscaling.keda.enabled=true",
        "--set",
        "autoscaling.keda.maxReplicas=99",
      ]),
    ).toMatch(/exceeds partitions/);
    expect(await refused(["--set", "unknownKey=1"])).toMatch(/unknownKey/);
  });

  describe("against a real kube-apiserver", () => {
    let plane: ControlPlane;
    beforeAll(async () => {
      plane = await ControlPlane.start(tools);
      await plane.kubectl(["apply", "--server-side", "-f", tools.crds]);
      await plane.kubectl(["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"]);
    }, 120_000);
    afterAll(async () => plane?.stop());

    it("chart - every render is accepted by the server with strict field validation (kubectl apply --server-side --dry-run=server)", {
      timeout: 120_000,
    }, async () => {
      await plane.kubectl(["create", "namespace", "dry"]);
      for (const [name, values] of Object.entries(MATRIX)) {
        const rendered = await template(values);
        await plane
          .kubectl(
            ["apply", "-n", "dry", "--server-side", "--dry-run=server", "--validate=strict", "-f", "-"],
            rendered,
          )
          .catch((err: Error) => {
            throw new Error(`${name}: ${err.message}`);
          });
      }
    });

    it("chart - helm install, upgrade with changed values, and uninstall leaving only what must persist", {
      timeout: 120_000,
    }, async () => {
      await plane.helm([
        "install",
        "qbo",
        CHART,
        "--namespace",
        "live",
        "--create-namespace",
        ...(MATRIX.defaults ?? []),
      ]);
      const encryptionKey = () =>
        plane.kubectl([
          "get",
          "secret",
          "-n",
          "live",
          "qbo-qbo-webhooks",
          "-o",
          "jsonpath={.data.TOKEN_ENCRYPTION_KEY}",
        ]);
      const secret = await encryptionKey();
      expect(secret.length).toBeGreaterThan(40);
      await plane.helm([
        "upgrade",
        "qbo",
        CHART,
        "--namespace",
        "live",
        ...(MATRIX.defaults ?? []),
        "--set",
        "processor.replicas=3",
        "--set",
        "logLevel=debug",
      ]);
      expect(
        await plane.kubectl([
          "get",
          "deploy",
          "-n",
          "live",
          "qbo-qbo-webhooks-processor",
          "-o",
          "jsonpath={.spec.replicas}",
        ]),
      ).toBe("3");
      // The generated key survives the upgrade: tokens in NATS stay readable.
      expect(await encryptionKey()).toBe(secret);
      await plane.helm(["uninstall", "qbo", "--namespace", "live", "--wait"]);
      const left = await plane.kubectl([
        "get",
        "deploy,sts,svc,sa,role,rolebinding,pdb,networkpolicy,configmap,secret",
        "-n",
        "live",
        "-o",
        "name",
      ]);
      // The Secret (its key decrypts the stored tokens) and the default ServiceAccount's objects remain.
      expect(
        left.split("\n").filter((line) => line && !line.includes("kube-root-ca.crt") && !line.endsWith("/default")),
      ).toEqual(["secret/qbo-qbo-webhooks"]);
    });
  });
});
