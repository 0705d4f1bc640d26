import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { freePort } from "@qbo-webhooks/messaging/testing";

export interface Server {
  readonly child: ChildProcess;
  readonly url: string;
}

/** Starts a Node server process on a free port (passed as its last argument and as HTTP_PORT) and waits until `isUp`. */
export async function startServer(
  args: string[],
  env: Record<string, string>,
  isUp: (url: string) => Promise<boolean>,
) {
  const port = await freePort();
  const child = spawn(process.execPath, [...args, String(port)], {
    env: { PATH: process.env.PATH ?? "", HTTP_PORT: String(port), ...env },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const server: Server = { child, url: `http://127.0.0.1:${port}` };
  for (let attempt = 0; attempt < 100; attempt++) {
    if (await isUp(server.url).catch(() => false)) return server;
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
