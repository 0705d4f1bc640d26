// Its own entry: the OpenTelemetry SDK it loads stays out of what only needs the kit (the CLI).
import { runService } from "@qbo-webhooks/service-kit/run-service";
import { loadConfig } from "./config.js";
import { startProcessor } from "./processor-service.js";

await runService({ name: "processor", loadConfig, start: (config, logger) => startProcessor(config, logger) });
