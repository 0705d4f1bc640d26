// `npm start`: runs the pipeline locally, with the services' logs on this terminal, until Ctrl-C:
// nats-server; the QuickBooks sandbox making changes and sending their webhooks to the ingress;
// ordering; the reconciler, through which every sandbox company connects (OAuth) and which
// catches up by CDC; and PROCESSORS processor replicas applying the changes from the sandbox's API.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseOrExit } from "./cli-args.mjs";

const USAGE = `Usage: npm start [-- --reset] [-- --help]

Runs the whole pipeline on this machine until Ctrl-C: nats-server, the QuickBooks sandbox (making
changes and sending their webhooks), the ingress, ordering, the reconciler and PROCESSORS processors.
A start goes on from where the last one stopped: the store (NATS, in LOCAL_DATA_DIR) and the
sandbox's companies (LOCAL_DATA_DIR/sandbox.json) are kept together.

Options:
  --reset       start afresh: new sandbox companies and an empty store (both are deleted first)
  --cpu-prof DIR  each service writes a V8 CPU profile (.cpuprofile, for Chrome DevTools or speedscope)
                into DIR when it stops
  -h, --help    this help

Environment: PROCESSORS (2), PARTITIONS (16), SANDBOX_TRAFFIC_RATE (2 changes/s), HTTP_PORT (8080),
  SANDBOX_PORT (8090), NATS_PORT (4222), NATS_URL (a NATS of your own), LOCAL_PORT_OFFSET (moves
  every port), LOCAL_DATA_DIR (.data), QBO_VERIFIER_TOKENS, QBO_CLIENT_SECRET, TOKEN_ENCRYPTION_KEY,
  SERVICE_NODE_OPTIONS (Node options for the four services, not the sandbox).

Exit codes: 0 stopped with Ctrl-C, 1 a service failed or another instance runs, 2 wrong command line.`;
const options = parseOrExit("npm start", USAGE, {
  reset: { type: "boolean", default: false },
  "cpu-prof": { type: "string" },
});

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
// LOCAL_PORT_OFFSET moves every port (tests run a whole pipeline beside another); LOCAL_DATA_DIR the state.
const offset = Number(process.env.LOCAL_PORT_OFFSET ?? 0);
const at = (port) => String(port + offset);
const dataDir = process.env.LOCAL_DATA_DIR ?? join(root, ".data");
const natsPort = Number(process.env.NATS_PORT ?? at(4222));
const natsConfig = process.env.NATS_CONFIG ?? join(root, "config", "nats-server.conf");
const natsUrl = process.env.NATS_URL ?? `nats://127.0.0.1:${natsPort}`;
const httpPort = process.env.HTTP_PORT ?? at(8080);
const verifierTokens = process.env.QBO_VERIFIER_TOKENS ?? "local-verifier-token";
const sandboxPort = process.env.SANDBOX_PORT ?? at(8090);
const clientSecret = process.env.QBO_CLIENT_SECRET ?? "local-client-secret";
const trafficRate = process.env.SANDBOX_TRAFFIC_RATE ?? "2";
const processors = Number(process.env.PROCESSORS ?? 2);
const partitions = process.env.PARTITIONS ?? "16";

// Before touching anything: is another instance running (its pid file), or are our ports taken?
// A second start must never delete the store under a live nats-server.
mkdirSync(dataDir, { recursive: true });
const pidFile = join(dataDir, "npm-start.pid");
const running = existsSync(pidFile) ? Number(readFileSync(pidFile, "utf8")) : undefined;
if (running && isAlive(running)) {
  console.error(
    `npm start: qbo-webhooks is already running here (pid ${running}). Stop it with Ctrl-C in its terminal, or \`kill ${running}\`;\n` +
      `or run a second one beside it with LOCAL_PORT_OFFSET=100 LOCAL_DATA_DIR=.data-2 npm start.`,
  );
  process.exit(1);
}
const ports = {
  NATS: process.env.NATS_URL ? undefined : natsPort,
  "NATS monitoring": process.env.NATS_URL ? undefined : Number(at(8222)),
  ingress: Number(httpPort),
  sandbox: Number(sandboxPort),
  reconciler: Number(at(8083)),
  "ops (health, metrics)": Number(at(9090)),
};
for (const [what, port] of Object.entries(ports)) {
  if (port !== undefined && (await listening(port))) {
    console.error(
      `npm start: port ${port} (${what}) is in use by another program. Stop it, or move every port with LOCAL_PORT_OFFSET=100.`,
    );
    process.exit(1);
  }
}
writeFileSync(pidFile, String(process.pid));
const sandboxState = join(dataDir, "sandbox.json");
const jetstreamDir = join(dataDir, "jetstream");
if (options.reset) {
  rmSync(sandboxState, { force: true });
  if (process.env.NATS_URL)
    console.log("npm start --reset: new sandbox companies; the store in your NATS (NATS_URL) is left as it is");
}
process.on("exit", () => {
  if (existsSync(pidFile) && Number(readFileSync(pidFile, "utf8")) === process.pid) rmSync(pidFile);
});

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === "EPERM";
  }
}

function listening(port) {
  return new Promise((resolve) => {
    const socket = connect({ port, host: "127.0.0.1" });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

const children = [];
/** Node's flags for our services: a CPU profile each with --cpu-prof (Node refuses it in NODE_OPTIONS). */
const serviceFlags = options["cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${options["cpu-prof"]}`] : [];

function run(name, command, args, env = {}) {
  // Own process group: Ctrl-C reaches only this launcher, which then stops the services in order.
  const child = spawn(command, command === process.execPath ? [...serviceFlags, ...args] : args, {
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

// Each service connects as its own NATS user (charts/qbo-webhooks/files/nats-auth.conf, which the chart ships too); the passwords are made once
// and kept in .data. Against a NATS of your own (NATS_URL), the services take NATS_* from you.
const natsUsers = ["ingress", "ordering", "processor", "reconciler", "operator"];
let natsAs = () => ({});
if (!process.env.NATS_URL) {
  mkdirSync(dataDir, { recursive: true });
  const passwordsFile = join(dataDir, "nats-passwords.json");
  // nats-server reads $VAR values as config values: a password must start with a letter to be a string.
  if (!existsSync(passwordsFile)) {
    const made = Object.fromEntries(natsUsers.map((user) => [user, `qbo-${randomBytes(18).toString("hex")}`]));
    writeFileSync(passwordsFile, JSON.stringify(made, null, 2), { mode: 0o600 });
  }
  const passwords = JSON.parse(readFileSync(passwordsFile, "utf8"));
  natsAs = (user) => ({ NATS_USER: user, NATS_PASSWORD: passwords[user] });
  // The store and the sandbox's companies go together: a store without the companies it copies
  // (a reset, or a data directory from before the sandbox kept them) would name entities the
  // sandbox no longer has, so it goes too.
  if (!existsSync(sandboxState) && existsSync(jetstreamDir)) {
    if (!options.reset) console.log(`npm start: ${sandboxState} is missing; starting with an empty store`);
    rmSync(jetstreamDir, { recursive: true, force: true });
  }
  const natsArgs = ["-c", natsConfig, "-p", String(natsPort), "-m", at(8222), "-sd", jetstreamDir];
  run("nats", join(root, ".tools", "bin", "nats-server"), natsArgs, {
    ...Object.fromEntries(natsUsers.map((user) => [`QBO_NATS_${user.toUpperCase()}_PASSWORD`, passwords[user]])),
  });
}
// Everything listens on loopback only; ops ports (health, metrics, /connect) are 9090 and up.
// SERVICE_NODE_OPTIONS reaches our services only, not the sandbox (a heap ceiling, as a deployment sets).
const local = {
  HTTP_HOST: "127.0.0.1",
  OPS_HOST: "127.0.0.1",
  ...(process.env.SERVICE_NODE_OPTIONS ? { NODE_OPTIONS: process.env.SERVICE_NODE_OPTIONS } : {}),
};
run("ingress", process.execPath, [join(root, "services", "ingress", "dist", "ingress.mjs")], {
  ...local,
  ...natsAs("ingress"),
  NATS_URL: natsUrl,
  HTTP_PORT: httpPort,
  OPS_PORT: at(9090),
  QBO_VERIFIER_TOKENS: verifierTokens,
});
run("sandbox", process.execPath, [join(root, "packages", "sandbox", "dist", "sandbox.mjs")], {
  SANDBOX_PORT: sandboxPort,
  SANDBOX_WEBHOOK_URL: `http://127.0.0.1:${httpPort}/webhooks/quickbooks`,
  SANDBOX_VERIFIER_TOKEN: verifierTokens.split(",")[0].trim(),
  SANDBOX_TRAFFIC_RATE: trafficRate,
  SANDBOX_CLIENT_SECRET: clientSecret,
  SANDBOX_STATE_FILE: sandboxState,
});

// A local key for the tokens at rest, kept across runs in .data.
mkdirSync(dataDir, { recursive: true });
const keyFile = join(dataDir, "token-encryption-key");
if (!existsSync(keyFile)) writeFileSync(keyFile, randomBytes(32).toString("base64"), { mode: 0o600 });
const tokenKey = process.env.TOKEN_ENCRYPTION_KEY ?? readFileSync(keyFile, "utf8").trim();
// The operators' token for the reconciler's /connect, also kept in .data.
const operatorFile = join(dataDir, "operator-token");
if (!existsSync(operatorFile)) writeFileSync(operatorFile, randomBytes(32).toString("hex"), { mode: 0o600 });
const operatorToken = process.env.OPERATOR_TOKEN ?? readFileSync(operatorFile, "utf8").trim();
const sandboxUrl = `http://127.0.0.1:${sandboxPort}`;
// Where this instance is and who the operator is, for the CLI, `npm run tail` and
// `npm run send-test-notification` (loaded by scripts/load-local-env.mjs).
const operatorNats = process.env.NATS_URL
  ? ""
  : `NATS_USER=operator\nNATS_PASSWORD=${JSON.parse(readFileSync(join(dataDir, "nats-passwords.json"), "utf8")).operator}\n`;
const opsUrls = [
  ["ingress", at(9090)],
  ["ordering", at(9091)],
  ...Array.from({ length: processors }, (_, i) => [`processor-${i + 1}`, at(i === 0 ? 9092 : 9093 + i)]),
  ["reconciler", at(9093)],
].map(([name, port]) => `${name}=http://127.0.0.1:${port}`);
writeFileSync(
  join(dataDir, "local.env"),
  `NATS_URL=${natsUrl}\n${operatorNats}SANDBOX_URL=${sandboxUrl}\nINGRESS_URL=http://127.0.0.1:${httpPort}/webhooks/quickbooks\n` +
    `QBO_VERIFIER_TOKENS=${verifierTokens}\nQBO_OPS_URLS=${opsUrls.join(",")}\n`,
  { mode: 0o600 },
);
const reconcilerUrl = `http://127.0.0.1:${at(8083)}`;
const reconcilerOps = `http://127.0.0.1:${at(9093)}`;
const quickbooksEnv = {
  QBO_ENVIRONMENT: "sandbox",
  QBO_API_BASE_URL: sandboxUrl,
  QBO_CLIENT_ID: "local-client-id",
  QBO_CLIENT_SECRET: clientSecret,
  TOKEN_ENCRYPTION_KEY: tokenKey,
};

const pipelineEnv = { ...local, NATS_URL: natsUrl, PARTITIONS: partitions };
run("ordering", process.execPath, [join(root, "services", "ordering", "dist", "ordering.mjs")], {
  ...pipelineEnv,
  ...natsAs("ordering"),
  OPS_PORT: at(9091),
});
run("reconciler", process.execPath, [join(root, "services", "reconciler", "dist", "reconciler.mjs")], {
  ...pipelineEnv,
  ...natsAs("reconciler"),
  ...quickbooksEnv,
  HTTP_PORT: at(8083),
  OPS_PORT: at(9093),
  OPERATOR_TOKEN: operatorToken,
  QBO_REDIRECT_URI: `${reconcilerUrl}/oauth/callback`,
  RECONCILER_ID: "local-1",
});
for (let i = 0; i < processors; i++) {
  run(`processor-${i + 1}`, process.execPath, [join(root, "services", "processor", "dist", "processor.mjs")], {
    ...pipelineEnv,
    ...quickbooksEnv,
    ...natsAs("processor"),
    // 9093 is the reconciler's.
    OPS_PORT: at(i === 0 ? 9092 : 9093 + i),
    PROCESSOR_ID: `local-${i + 1}`,
  });
}
const connected = await connectSandboxCompanies();

/**
 * Connects every sandbox company the way an operator's browser would: the reconciler's /connect
 * (ops port, operator token; it sets the flow's cookie), the sandbox's consent page (it approves at
 * once), and back to the reconciler's /oauth/callback with the cookie, which stores the tokens and
 * registers the realm; its leader then runs the first CDC. A company connected by an earlier start
 * is answered 409 and keeps its tokens (the sandbox kept its grant), and its leader catches it up.
 */
async function connectSandboxCompanies() {
  const companies = await retry(() => fetch(`${sandboxUrl}/_sandbox/companies`).then((r) => r.json()), "the sandbox");
  await retry(() => fetch(`${reconcilerOps}/readyz`).then((r) => (r.ok ? r : Promise.reject())), "the reconciler");
  let kept = 0;
  for (const { realmId } of companies) {
    const start = await fetch(`${reconcilerOps}/connect?realmId=${realmId}`, {
      headers: { authorization: `Bearer ${operatorToken}` },
      redirect: "manual",
    });
    const cookie = (start.headers.get("set-cookie") ?? "").split(";")[0];
    const approved = await fetch(start.headers.get("location") ?? "", { redirect: "manual" });
    const answer = await fetch(approved.headers.get("location") ?? "", { headers: { cookie } });
    if (answer.status === 409) kept++;
    else if (!answer.ok) throw new Error(`connecting ${realmId} failed: ${answer.status} ${await answer.text()}`);
  }
  return { connected: companies.length - kept, kept };
}

async function retry(attempt, what) {
  for (let i = 0; i < 150; i++) {
    try {
      return await attempt();
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  throw new Error(`${what} did not start`);
}

console.log(`
qbo-webhooks is running locally (Ctrl-C stops it):
  webhook endpoint  POST http://127.0.0.1:${httpPort}/webhooks/quickbooks   (verifier token: ${
    process.env.QBO_VERIFIER_TOKENS ? "from QBO_VERIFIER_TOKENS" : verifierTokens
  })
  ingress ops       http://127.0.0.1:${at(9090)}/healthz  /readyz  /metrics
  NATS              ${natsUrl}   (monitoring: http://127.0.0.1:${at(8222)}/jsz)
  QuickBooks sandbox http://127.0.0.1:${sandboxPort}   (${trafficRate} changes/s; control API under /_sandbox)

  ordering / processors     metrics on http://127.0.0.1:${at(9091)}/metrics, :${at(9092)}/metrics, :${at(9094)} …  (${processors} processor replicas, ${partitions} partitions)
  reconciler                ${reconcilerOps}/metrics; connect another company: ${reconcilerOps}/connect
                            (any user name; password: the operator token in ${operatorFile})
                            (sandbox companies: ${connected.connected} connected through it now, ${connected.kept} kept from the last start)

Is it healthy?              npm run qbo-webhooks -- status
Companies and their CDC:    npm run qbo-webhooks -- realms list
                            npm run qbo-webhooks -- realms cdc <realmId>

Follow the change feed:     npm run tail
Notifications received:     curl -s http://127.0.0.1:${at(9090)}/metrics | grep qbo_webhook_requests_total
Sandbox deliveries:         curl -s http://127.0.0.1:${sandboxPort}/_sandbox/apps/local-app/deliveries | head -c 600

Send a test notification and see it arrive in the feed:
  npm run send-test-notification                # CloudEvents; --legacy for the legacy form
`);
