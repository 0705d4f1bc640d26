import { runService } from "@qbo-webhooks/service-kit";
import { loadConfig } from "./config.js";
import { startProcessor } from "./processor-service.js";

await runService({ name: "processor", loadConfig, start: (config, logger) => startProcessor(config, logger) });
