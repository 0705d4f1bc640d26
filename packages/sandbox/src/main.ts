// `npm run sandbox`: the sandbox as its own process, configured from the environment. It is a
// test double, so unlike the other packages it has an entry point of its own.
import { ENTITY_NAMES } from "@qbo-webhooks/contracts";
import { z } from "zod";
import { seededRandom } from "./company/entity-fields.js";
import { Sandbox } from "./sandbox.js";
import { StateFile } from "./state-file.js";
import { TrafficGenerator } from "./traffic/traffic-generator.js";

const Env = z.object({
  SANDBOX_PORT: z.coerce.number().int().min(0).max(65_535).default(8090),
  SANDBOX_HOST: z.string().default("127.0.0.1"),
  SANDBOX_SPEED: z.coerce.number().min(0).default(1),
  SANDBOX_SEED: z.coerce.number().int().default(1),
  SANDBOX_REALMS: z.coerce.number().int().min(0).max(10_000).default(5),
  SANDBOX_WEBHOOK_URL: z.url().optional(),
  SANDBOX_VERIFIER_TOKEN: z.string().min(1).default("local-verifier-token"),
  SANDBOX_PAYLOAD_FORM: z.enum(["cloudevents", "legacy"]).default("cloudevents"),
  SANDBOX_POLICY: z.enum(["current", "legacy"]).default("current"),
  SANDBOX_ENVIRONMENT: z.enum(["sandbox", "production"]).default("sandbox"),
  SANDBOX_CLIENT_ID: z.string().min(1).default("local-client-id"),
  SANDBOX_CLIENT_SECRET: z.string().min(1).default("local-client-secret"),
  SANDBOX_TRAFFIC_RATE: z.coerce.number().min(0).default(0),
  /**
   * Each company's books before it is connected: between the two numbers of entities of every type
   * QuickBooks lets one create, spread over the last SANDBOX_HISTORY_DAYS ("0-0": none).
   */
  SANDBOX_HISTORY: z
    .string()
    .regex(/^\d+-\d+$/, 'must be "min-max", such as "10-60"')
    .default("10-60")
    .transform((text) => {
      const [min = 0, max = 0] = text.split("-").map(Number);
      return { min, max };
    })
    .refine(({ min, max }) => min <= max, "min must not exceed max"),
  SANDBOX_HISTORY_DAYS: z.coerce.number().int().min(1).max(3650).default(365),
  /**
   * Where the companies, connections and OAuth grants are kept across restarts: read at start when
   * it exists (SANDBOX_REALMS and SANDBOX_HISTORY then make nothing), written as they change. Unset:
   * every start makes new companies.
   */
  SANDBOX_STATE_FILE: z.string().min(1).optional(),
});

const parsed = Env.safeParse(process.env);
if (!parsed.success) {
  const lines = parsed.error.issues.map((issue) => `  ${issue.path.join(".")}: ${issue.message}`);
  process.stderr.write(`sandbox: invalid configuration:\n${lines.join("\n")}\n`);
  process.exit(1);
}
const env = parsed.data;

const stateFile = env.SANDBOX_STATE_FILE ? new StateFile(env.SANDBOX_STATE_FILE, () => sandbox.state()) : undefined;
const saved = savedOrExit(stateFile);

function savedOrExit(file: StateFile | undefined) {
  try {
    return file?.read();
  } catch (err) {
    process.stderr.write(`sandbox: SANDBOX_STATE_FILE: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
const sandbox = await Sandbox.start({
  port: env.SANDBOX_PORT,
  host: env.SANDBOX_HOST,
  speed: env.SANDBOX_SPEED,
  seed: env.SANDBOX_SEED,
  // A company's change times only move forward, across restarts too.
  ...(saved ? { start: Math.max(Date.now(), saved.savedAt + 1) } : {}),
});
const app = sandbox.registerApp({
  appId: "local-app",
  clientId: env.SANDBOX_CLIENT_ID,
  clientSecret: env.SANDBOX_CLIENT_SECRET,
  verifierToken: env.SANDBOX_VERIFIER_TOKEN,
  environment: env.SANDBOX_ENVIRONMENT,
  payloadForm: env.SANDBOX_PAYLOAD_FORM,
  policy: env.SANDBOX_POLICY,
  ...(env.SANDBOX_WEBHOOK_URL ? { endpointUrl: env.SANDBOX_WEBHOOK_URL } : {}),
});
if (saved) sandbox.restore(saved);
else newCompanies();
const realms = sandbox.companies();
if (stateFile) {
  sandbox.onStateChange(() => stateFile.schedule());
  stateFile.save();
}

function newCompanies(): void {
  const made = Array.from({ length: env.SANDBOX_REALMS }, () => sandbox.createCompany());
  const history = seededRandom(env.SANDBOX_SEED + 2);
  const { min: fewest, max: most } = env.SANDBOX_HISTORY;
  const now = sandbox.clock.now();
  for (const company of made) {
    company.seedHistory(
      ENTITY_NAMES,
      () => fewest + Math.floor(history() * (most - fewest + 1)),
      now - env.SANDBOX_HISTORY_DAYS * 24 * 3600_000,
      now - 60_000,
    );
  }
  for (const company of made) sandbox.connect(app.appId, company.realmId);
}
const traffic = new TrafficGenerator({
  realms,
  ratePerSecond: env.SANDBOX_TRAFFIC_RATE,
  random: seededRandom(env.SANDBOX_SEED + 1),
});
if (env.SANDBOX_TRAFFIC_RATE > 0 && realms.length > 0) traffic.start();

process.stdout.write(
  `${JSON.stringify({
    msg: "sandbox listening",
    url: sandbox.url,
    speed: env.SANDBOX_SPEED,
    app: {
      appId: app.appId,
      clientId: app.clientId,
      endpointUrl: app.endpointUrl ?? null,
      policy: app.policy,
      payloadForm: app.payloadForm,
    },
    realms: realms.map((c) => c.realmId),
    restoredFrom: saved ? stateFile?.path : null,
    trafficPerSecond: env.SANDBOX_TRAFFIC_RATE,
    control: `${sandbox.url}/_sandbox`,
  })}\n`,
);

async function stop(): Promise<void> {
  traffic.stop();
  await sandbox.close();
  stateFile?.save();
  process.exit(0);
}
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
