// Preloaded by `npm run tail`, `npm run qbo-webhooks` and `npm run send-test-notification` (node
// --import): where the instance `npm start` runs is (NATS, sandbox, ingress) and its operator's NATS
// credentials, kept in .data/local.env (LOCAL_DATA_DIR/local.env), when there is one. Variables already set win.
import { existsSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "..");
const file = join(process.env.LOCAL_DATA_DIR ?? join(root, ".data"), "local.env");
if (existsSync(file)) process.loadEnvFile(file);
