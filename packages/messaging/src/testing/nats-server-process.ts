import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

export interface NatsServerOptions {
  /** `sync_interval: always`: fsync before every PubAck (see the README's durability section). */
  readonly syncAlways?: boolean;
  /** Bytes; 8 MiB by default, as in the shipped server config. */
  readonly maxPayload?: number;
  /** A config file to include (an absolute path), such as the shipped users and permissions. */
  readonly include?: string;
  /** Environment of the server process: values the included config refers to (`$VAR`). */
  readonly env?: Readonly<Record<string, string>>;
}

/** The name an included config file gets in the server's directory. */
const INCLUDED = "included.conf";

/** One node of a cluster on loopback: its name and the route ports of every node. */
interface ClusterNode {
  readonly name: string;
  readonly routePort: number;
  readonly routePorts: readonly number[];
}

/**
 * A real nats-server with JetStream for integration tests: its own loopback port and store
 * directory, and the means to stop, kill (-9) and restart it on the same port and store.
 */
export class NatsServerProcess {
  #child: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly binary: string,
    /** The server's name in its cluster (what stream info names as leader); empty when alone. */
    readonly name: string,
    private readonly env: Readonly<Record<string, string>>,
  ) {}

  static async start(options: NatsServerOptions = {}): Promise<NatsServerProcess> {
    const server = await NatsServerProcess.#prepare(options);
    await server.restart();
    return server;
  }

  static async #prepare(options: NatsServerOptions, node?: ClusterNode): Promise<NatsServerProcess> {
    const dir = await mkdtemp(join(tmpdir(), "qbo-nats-"));
    const port = await freePort();
    // nats-server resolves includes against the including file's directory: copy the file there.
    if (options.include) await copyFile(options.include, join(dir, INCLUDED));
    await writeFile(join(dir, "nats-server.conf"), serverConfig(port, dir, options, node));
    return new NatsServerProcess(port, dir, findNatsServerBinary(), node?.name ?? "", options.env ?? {});
  }

  /**
   * `size` servers forming one JetStream cluster on loopback (streams and buckets may then have up
   * to `size` replicas); resolves once every node accepts clients.
   */
  static async startCluster(size: number, options: NatsServerOptions = {}): Promise<NatsServerProcess[]> {
    const routePorts: number[] = [];
    for (let i = 0; i < size; i++) routePorts.push(await freePort());
    const nodes = await Promise.all(
      routePorts.map((routePort, i) =>
        NatsServerProcess.#prepare(options, { name: `n${i + 1}`, routePort, routePorts }),
      ),
    );
    await Promise.all(nodes.map((node) => node.restart()));
    return nodes;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** The server's process id while it runs (to read its memory, for example). */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  /** Starts the server again on the same port and store; resolves once it accepts clients. */
  async restart(): Promise<void> {
    if (this.#child) throw new Error("nats-server is already running");
    const child = spawn(this.binary, ["-c", join(this.dir, "nats-server.conf")], {
      env: { PATH: process.env.PATH ?? "", ...this.env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.#child = child;
    let output = "";
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nats-server did not start within 15 s:\n${output}`)), 15_000);
      child.stderr?.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes("Server is ready")) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited with ${code} while starting:\n${output}`));
      });
    });
    child.stderr?.resume();
    child.removeAllListeners("exit");
  }

  /** A clean shutdown (SIGTERM), as in a rolling restart. */
  stop(): Promise<void> {
    return this.#signal("SIGTERM");
  }

  /** A crash: SIGKILL, no flush. */
  kill(): Promise<void> {
    return this.#signal("SIGKILL");
  }

  /** Stops the server and removes its store. */
  async dispose(): Promise<void> {
    await this.#signal("SIGKILL");
    await rm(this.dir, { recursive: true, force: true });
  }

  async #signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.kill(signal);
    });
  }
}

function serverConfig(port: number, dir: string, options: NatsServerOptions, node?: ClusterNode): string {
  const sync = options.syncAlways ? "\n  sync_interval: always" : "";
  const cluster = node
    ? `server_name: ${node.name}
cluster {
  name: qbo-test
  listen: 127.0.0.1:${node.routePort}
  routes: [${node.routePorts.map((p) => `nats-route://127.0.0.1:${p}`).join(", ")}]
}
`
    : "";
  const include = options.include ? `include ./${INCLUDED}\n` : "";
  return `listen: 127.0.0.1:${port}
max_payload: ${options.maxPayload ?? 8 * 1024 * 1024}
${include}${cluster}jetstream {
  store_dir: ${JSON.stringify(join(dir, "jetstream"))}${sync}
}
`;
}

/** A port free on loopback right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

/**
 * The nats-server to run: `NATS_SERVER_BIN`, else the one `scripts/setup.sh` built into the
 * repository's `.tools/bin`, else whatever `nats-server` is on PATH.
 */
export function findNatsServerBinary(): string {
  const fromEnv = process.env.NATS_SERVER_BIN;
  if (fromEnv) return fromEnv;
  for (let dir = process.cwd(); ; dir = dirname(dir)) {
    const candidate = join(dir, ".tools", "bin", "nats-server");
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return "nats-server";
  }
}
