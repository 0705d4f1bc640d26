import { type ChildProcess, execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";
import { freePort } from "@qbo-webhooks/messaging/testing";

const run = promisify(execFile);
const ENSURE = fileURLToPath(new URL("../../../scripts/ensure-k8s-tools.sh", import.meta.url));

/**
 * Where scripts/ensure-k8s-tools.sh keeps the Kubernetes tools, or why they are not there. `npm test`
 * builds them first (cached outside the clone); a test that needs one says so when it is missing.
 */
export async function k8sTools(): Promise<K8sTools> {
  const { stdout, stderr } = await run("bash", [ENSURE, "--print-dir", "--check"]).catch(
    (err: { stdout?: string; stderr?: string }) => ({ stdout: "", stderr: err.stderr ?? "" }),
  );
  const dir = stdout.trim();
  if (!dir)
    return {
      bin: "",
      schemas: "",
      crds: "",
      kwokStages: "",
      missing: stderr.trim() || "the Kubernetes tools are not built",
    };
  const current = Object.fromEntries(
    (await readFile(join(dir, "current"), "utf8"))
      .split("\n")
      .filter(Boolean)
      .map((line) => line.split("=", 2)),
  );
  return {
    bin: join(dir, "bin"),
    schemas: current.schemas ?? "",
    crds: current.crds ?? "",
    kwokStages: current.kwok_stages ?? "",
    missing: undefined,
  };
}

/**
 * Where the tools are (binaries, kubeconform's schemas, the upstream CRDs, kwok's stage files); `missing`
 * says what is not there.
 */
export interface K8sTools {
  readonly bin: string;
  readonly schemas: string;
  readonly crds: string;
  readonly kwokStages: string;
  readonly missing: string | undefined;
}

/**
 * A real etcd and kube-apiserver on loopback: what the server checks (schemas, strict fields). With
 * `nodes`, also kube-controller-manager, kube-scheduler and kwok with that many simulated nodes: Deployments
 * and StatefulSets get pods that are scheduled and turn Ready (no container runs), PodDisruptionBudgets
 * get their status, and evictions are decided as on a real cluster.
 */
export class ControlPlane {
  readonly #children: ChildProcess[] = [];
  #stopping = false;

  private constructor(
    readonly dir: string,
    readonly kubeconfig: string,
    /** The API server's URL, and the CA file its serving certificate is signed by. */
    readonly server: string,
    private readonly bin: string,
  ) {}

  get caFile(): string {
    return join(this.dir, "ca.crt");
  }

  static async start(tools: K8sTools, options: { nodes?: number } = {}): Promise<ControlPlane> {
    const nodes = options.nodes ?? 0;
    const dir = await mkdtemp(join(tmpdir(), "qbo-k8s-"));
    const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    await certificates(dir);
    const kubeconfig = join(dir, "kubeconfig");
    const server = `https://127.0.0.1:${apiPort}`;
    await writeFile(
      kubeconfig,
      [
        "apiVersion: v1",
        "kind: Config",
        "clusters: [{name: test, cluster: {server: " +
          server +
          ", certificate-authority: " +
          join(dir, "ca.crt") +
          "}}]",
        "users: [{name: admin, user: {client-certificate: " +
          join(dir, "admin.crt") +
          ", client-key: " +
          join(dir, "admin.key") +
          "}}]",
        "contexts: [{name: test, context: {cluster: test, user: admin, namespace: default}}]",
        "current-context: test",
        "",
      ].join("\n"),
    );
    const plane = new ControlPlane(dir, kubeconfig, server, tools.bin);
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    plane.#spawn("etcd", [
      "--data-dir",
      join(dir, "etcd"),
      "--listen-client-urls",
      etcdUrl,
      "--advertise-client-urls",
      etcdUrl,
      "--listen-peer-urls",
      `http://127.0.0.1:${peerPort}`,
      "--initial-advertise-peer-urls",
      `http://127.0.0.1:${peerPort}`,
      "--initial-cluster",
      `default=http://127.0.0.1:${peerPort}`,
      "--unsafe-no-fsync",
      "--log-level",
      "error",
    ]);
    plane.#spawn("kube-apiserver", [
      `--etcd-servers=${etcdUrl}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      // Refused on loopback with the default reconciler (K8S.md).
      "--endpoint-reconciler-type=none",
      `--secure-port=${apiPort}`,
      `--cert-dir=${dir}`,
      `--tls-cert-file=${join(dir, "server.crt")}`,
      `--tls-private-key-file=${join(dir, "server.key")}`,
      `--client-ca-file=${join(dir, "ca.crt")}`,
      "--authorization-mode=Node,RBAC",
      `--service-account-key-file=${join(dir, "sa.pub")}`,
      `--service-account-signing-key-file=${join(dir, "sa.key")}`,
      "--service-account-issuer=https://kubernetes.default.svc",
      "--service-cluster-ip-range=10.96.0.0/16",
      // Without a controller manager no token controller makes ServiceAccount tokens.
      ...(nodes > 0 ? [] : ["--disable-admission-plugins=ServiceAccount"]),
    ]);
    await plane.#waitReady();
    if (nodes > 0) await plane.#startNodes(tools, nodes);
    return plane;
  }

  async #startNodes(tools: K8sTools, nodes: number): Promise<void> {
    const [managerPort, schedulerPort, kwokPort] = [await freePort(), await freePort(), await freePort()];
    const common = [`--kubeconfig=${this.kubeconfig}`, "--leader-elect=false", "--bind-address=127.0.0.1"];
    this.#spawn("kube-controller-manager", [
      ...common,
      `--secure-port=${managerPort}`,
      `--service-account-private-key-file=${join(this.dir, "sa.key")}`,
      `--root-ca-file=${join(this.dir, "ca.crt")}`,
      "--cluster-cidr=10.244.0.0/16",
      "--service-cluster-ip-range=10.96.0.0/16",
    ]);
    this.#spawn("kube-scheduler", [...common, `--secure-port=${schedulerPort}`]);
    this.#spawn("kwok", [
      `--kubeconfig=${this.kubeconfig}`,
      `--config=${tools.kwokStages}`,
      "--manage-all-nodes=false",
      "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
      // The heartbeat stage updates a node's status every ten minutes and counts on its Lease in between:
      // without one, the node lifecycle controller marks the nodes NotReady (and their pods unready) in 50 s.
      "--node-lease-duration-seconds=40",
      `--server-address=127.0.0.1:${kwokPort}`,
      "--cidr=10.244.0.0/16",
      "--node-ip=10.0.0.1",
    ]);
    const nodeList = Array.from({ length: nodes }, (_, i) =>
      [
        "apiVersion: v1",
        "kind: Node",
        "metadata:",
        `  name: kwok-node-${i}`,
        "  annotations: { kwok.x-k8s.io/node: fake }",
        `  labels: { type: kwok, kubernetes.io/hostname: kwok-node-${i}, topology.kubernetes.io/zone: zone-${i} }`,
      ].join("\n"),
    ).join("\n---\n");
    // The controller manager makes the default ServiceAccount that pods need; then the nodes turn Ready.
    await this.until("the namespace's default ServiceAccount", () =>
      this.kubectl(["get", "serviceaccount", "default"]),
    );
    await this.kubectl(["apply", "-f", "-"], nodeList);
    await this.kubectl(["wait", "--for=condition=Ready", "node", "--all", "--timeout=60s"]);
  }

  /** Runs kubectl against this API server; `input` goes to its stdin. */
  async kubectl(args: string[], input?: string): Promise<string> {
    return this.#tool("kubectl", [`--kubeconfig=${this.kubeconfig}`, ...args], input);
  }

  /** Runs a kubectl that keeps printing (`--watch`), each line to `onLine`, until the answered stop is called. */
  kubectlLines(args: string[], onLine: (line: string) => void): () => Promise<void> {
    const child = spawn(join(this.bin, "kubectl"), [`--kubeconfig=${this.kubeconfig}`, ...args], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let rest = "";
    child.stdout.on("data", (chunk: Buffer) => {
      const lines = (rest + chunk.toString()).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) onLine(line);
    });
    return async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      await exited;
    };
  }

  /**
   * Installs the chart (release `qbo`, the least secrets it needs) in `namespace`, and answers a
   * KubeConfig acting as the reconciler's ServiceAccount there: what the chart's Role allows is all
   * its clients may do.
   */
  async installAsReconciler(chart: string, namespace: string): Promise<{ account: string; config: KubeConfig }> {
    const secrets = ["secrets.verifierTokens=v", "secrets.clientId=c", "secrets.clientSecret=s"];
    await this.helm([
      "install",
      "qbo",
      chart,
      "-n",
      namespace,
      "--create-namespace",
      ...secrets.flatMap((s) => ["--set", s]),
    ]);
    const account = "qbo-qbo-webhooks-reconciler";
    const token = (await this.kubectl(["create", "token", account, "-n", namespace, "--duration=2h"])).trim();
    const config = new KubeConfig();
    config.loadFromOptions({
      clusters: [{ name: "test", server: this.server, caFile: this.caFile }],
      users: [{ name: account, token }],
      contexts: [{ name: "test", cluster: "test", user: account, namespace }],
      currentContext: "test",
    });
    return { account, config };
  }

  /** Runs helm (3 unless asked for 4) against this API server. */
  async helm(args: string[], major: 3 | 4 = 3): Promise<string> {
    return this.#tool(`helm${major}`, [`--kubeconfig=${this.kubeconfig}`, ...args]);
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    for (const child of this.#children.reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      await exited;
    }
    await rm(this.dir, { recursive: true, force: true });
  }

  #spawn(name: string, args: string[]): void {
    const child = spawn(join(this.bin, name), args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    child.once("exit", (code, signal) => {
      if (!this.#stopping) process.stderr.write(`${name} exited (${signal ?? code}):\n${stderr}\n`);
    });
    this.#children.push(child);
  }

  async #waitReady(): Promise<void> {
    await this.until("kube-apiserver's /readyz", async () => {
      if ((await this.kubectl(["get", "--raw=/readyz"])).trim() !== "ok") throw new Error("not ready");
    });
  }

  /** Retries `check` until it resolves (answering what it answered), for at most 60 s. */
  async until<T>(what: string, check: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        return await check();
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`${what}: not there within 60 s (${String(err)})`);
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  }

  async #tool(name: string, args: string[], input?: string): Promise<string> {
    const child = spawn(join(this.bin, name), args, { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdin.end(input ?? "");
    const [code] = await once(child, "exit");
    if (code !== 0) throw new Error(`${name} ${args.slice(1).join(" ")} failed (${code}):\n${stderr}${stdout}`);
    return stdout;
  }
}

/** A throwaway CA, the API server's serving certificate, an admin client (system:masters) and the service-account keys. */
async function certificates(dir: string): Promise<void> {
  const ssl = (...args: string[]) => run("openssl", args, { cwd: dir });
  const days = ["-days", "2"];
  await ssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    ...days,
    "-subj",
    "/CN=qbo-test-ca",
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
  );
  /** A key and a certificate for `subject`, signed by the CA. */
  const signed = async (name: string, subject: string, extensions: string[] = []) => {
    await ssl(
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      subject,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
    );
    await ssl(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      ...days,
      ...extensions,
      "-out",
      `${name}.crt`,
    );
  };
  await writeFile(
    join(dir, "server.ext"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.96.0.1,DNS:kubernetes.default.svc\n",
  );
  await signed("server", "/CN=kube-apiserver", ["-extfile", "server.ext"]);
  await signed("admin", "/O=system:masters/CN=admin");
  await ssl("genrsa", "-out", "sa.key", "2048");
  await ssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub");
  if (!existsSync(join(dir, "sa.pub"))) throw new Error("openssl made no service-account key");
}
