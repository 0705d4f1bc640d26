// `npm start`: runs the pipeline locally: nats-server, the ingress, and the QuickBooks sandbox
// sending its traffic's webhooks to the ingress, with their logs on this terminal, until Ctrl-C.
// Later issues add the other services here.
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const natsPort = Number(process.env.NATS_PORT ?? 4222);
const natsConfig = process.env.NATS_CONFIG ?? join(root, "config", "nats-server.conf");
const natsUrl = process.env.NATS_URL ?? `nats://127.0.0.1:${natsPort}`;
const httpPort = process.env.HTTP_PORT ?? "8080";
const verifierTokens = process.env.QBO_VERIFIER_TOKENS ?? "local-verifier-token";
const sandboxPort = process.env.SANDBOX_PORT ?? "8090";
const trafficRate = process.env.SANDBOX_TRAFFIC_RATE ?? "2";

const children = [];
function run(name, command, args, env = {}) {
  // Own process group: Ctrl-C reaches only this launcher, which then stops the services in order.
  const child = spawn(command, args, {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const prefix = (stream, out) =>
    stream.on("data", (chunk) => {
      for (const line of chunk.toString().split("\n").filter(Boolean)) out.write(`[${name}] ${line}\n`);
    });
  prefix(child.stdout, process.stdout);
  prefix(child.stderr, process.stderr);
  child.on("exit", (code, signal) => {
    if (!stopping) {
      console.error(`[${name}] exited (${signal ?? code}); stopping everything`);
      void stop(1);
    }
  });
  children.push(child);
  return child;
}

let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  // Reverse order, one at a time: the ingress drains into NATS before NATS stops.
  for (const child of children.reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  }
  process.exit(code);
}
process.on("SIGINT", () => void stop(0));
process.on("SIGTERM", () => void stop(0));

if (!process.env.NATS_URL) {
  mkdirSync(join(root, ".data"), { recursive: true });
  run("nats", join(root, ".tools", "bin", "nats-server"), ["-c", natsConfig, "-p", String(natsPort)]);
}
run("ingress", process.execPath, [join(root, "services", "ingress", "dist", "main.js")], {
  NATS_URL: natsUrl,
  HTTP_PORT: httpPort,
  QBO_VERIFIER_TOKENS: verifierTokens,
});
run("sandbox", process.execPath, [join(root, "packages", "sandbox", "dist", "main.js")], {
  SANDBOX_PORT: sandboxPort,
  SANDBOX_WEBHOOK_URL: `http://127.0.0.1:${httpPort}/webhooks/quickbooks`,
  SANDBOX_VERIFIER_TOKEN: verifierTokens.split(",")[0].trim(),
  SANDBOX_TRAFFIC_RATE: trafficRate,
});

console.log(`
qbo-webhooks is running locally (Ctrl-C stops it):
  webhook endpoint  POST http://127.0.0.1:${httpPort}/webhooks/quickbooks   (verifier token: ${
    process.env.QBO_VERIFIER_TOKENS ? "from QBO_VERIFIER_TOKENS" : verifierTokens
  })
  health            http://127.0.0.1:${httpPort}/healthz  /readyz  /metrics
  NATS              ${natsUrl}   (monitoring: http://127.0.0.1:8222/jsz)
  QuickBooks sandbox http://127.0.0.1:${sandboxPort}   (${trafficRate} changes/s; control API under /_sandbox)

Watch notifications arrive: curl -s http://127.0.0.1:${httpPort}/metrics | grep qbo_webhook_requests_total
Sandbox deliveries:         curl -s http://127.0.0.1:${sandboxPort}/_sandbox/apps/local-app/deliveries | head -c 600

Send a signed test notification from another terminal:
  npm run send-test-notification                # CloudEvents, 3 events
  npm run send-test-notification -- --legacy    # the legacy eventNotifications form
`);
