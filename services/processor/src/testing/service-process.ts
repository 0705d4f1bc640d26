import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";

const READY_WITHIN_MS = 20_000;

/**
 * A service's bundle run as a process of its own, as in production: started and restarted on the
 * same ports, killed with any signal. Ready when its ops port answers /readyz with 200.
 */
export class ServiceProcess {
  #child: ChildProcess;

  private constructor(
    readonly name: string,
    private readonly main: string,
    private readonly env: Record<string, string>,
    readonly opsPort: number,
  ) {
    this.#child = this.#spawn();
  }

  /** @throws {Error} when the process exits or is not ready within 20 s. */
  static async start(name: string, main: string, env: Record<string, string>, opsPort: number) {
    const service = new ServiceProcess(name, main, env, opsPort);
    await service.#untilReady();
    return service;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Sends `signal` and waits for the exit (SIGSTOP/SIGCONT return at once). */
  async signal(signal: NodeJS.Signals): Promise<void> {
    if (!this.#running()) return;
    if (signal === "SIGSTOP" || signal === "SIGCONT") {
      this.#child.kill(signal);
      return;
    }
    const exited = once(this.#child, "exit");
    this.#child.kill(signal);
    await exited;
  }

  /** Starts it again with the same environment and ports; waits until it is ready. */
  async restart(): Promise<void> {
    await this.signal("SIGKILL");
    this.#child = this.#spawn();
    await this.#untilReady();
  }

  /** SIGTERM, as Kubernetes stops a pod: the service drains and exits. */
  async stop(): Promise<void> {
    await this.signal("SIGTERM");
  }

  #spawn(): ChildProcess {
    return spawn(process.execPath, [this.main], {
      env: { PATH: process.env.PATH ?? "", ...this.env, OPS_HOST: "127.0.0.1", OPS_PORT: String(this.opsPort) },
      stdio: ["ignore", "ignore", "inherit"],
    });
  }

  #running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  async #untilReady(): Promise<void> {
    const deadline = performance.now() + READY_WITHIN_MS;
    while (performance.now() < deadline) {
      if (!this.#running())
        throw new Error(`${this.name} exited (${this.#child.exitCode ?? this.#child.signalCode}) before it was ready`);
      const status = await fetch(`http://127.0.0.1:${this.opsPort}/readyz`).then(
        async (response) => {
          await response.arrayBuffer();
          return response.status;
        },
        () => 0,
      );
      if (status === 200) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await this.signal("SIGKILL");
    throw new Error(`${this.name} was not ready within ${READY_WITHIN_MS} ms`);
  }
}
