import { runService } from "@qbo-webhooks/service-kit";
import { loadConfig } from "./config.js";
import { startOrdering } from "./ordering-service.js";

await runService({ name: "ordering", loadConfig, start: (config, logger) => startOrdering(config, logger) });
