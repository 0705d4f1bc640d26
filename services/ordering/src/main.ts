// Its own entry: the OpenTelemetry SDK it loads stays out of what only needs the kit (the CLI).
import { runService } from "@qbo-webhooks/service-kit/run-service";
import { loadConfig } from "./config.js";
import { startOrdering } from "./ordering-service.js";

await runService({ name: "ordering", loadConfig, start: (config, logger) => startOrdering(config, logger) });
