// Preloaded by `npm run tail` and `npm run qbo-webhooks` (node --import): the operator's NATS
// credentials that `npm start` keeps in .data/nats.env, when there are any. Variables already set win.
import { existsSync } from "node:fs";
import { join } from "node:path";

const file = join(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "..", ".data", "nats.env");
if (existsSync(file)) process.loadEnvFile(file);
