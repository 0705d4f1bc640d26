import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { freePort } from "@qbo-webhooks/messaging/testing";

export interface Server {
  readonly child: ChildProcess;
  readonly url: string;
}

/**
 * Starts a Node server process on a free port (passed as its last argument and as HTTP_PORT; a service's
 * ops port, OPS_PORT, is another free one) and waits until `isUp`.
 */
export async function startServer(
  args: string[],
  env: Record<string, string>,
  isUp: (urls: { url: string; opsUrl: string }) => Promise<boolean>,
) {
  const [port, opsPort] = [await freePort(), await freePort()];
  // BENCH_CPU_PROF=dir: every server writes a V8 CPU profile there when it stops (see README, Benchmarks).
  const profile = process.env.BENCH_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const child = spawn(process.execPath, [...profile, ...args, String(port)], {
    env: { PATH: process.env.PATH ?? "", HTTP_PORT: String(port), OPS_PORT: String(opsPort), ...env },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const server: Server = { child, url: `http://127.0.0.1:${port}` };
  const urls = { url: server.url, opsUrl: `http://127.0.0.1:${opsPort}` };
  for (let attempt = 0; attempt < 100; attempt++) {
    if (await isUp(urls).catch(() => false)) return server;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill("SIGKILL");
  throw new Error(`${args.join(" ")} did not come up within 10 s`);
}

export async function stopServer(server: Server): Promise<void> {
  const exited = once(server.child, "exit");
  server.child.kill("SIGTERM");
  await exited;
}
