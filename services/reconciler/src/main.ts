// Its own entry: the OpenTelemetry SDK it loads stays out of what only needs the kit (the CLI).
import { runService } from "@qbo-webhooks/service-kit/run-service";
import { loadConfig } from "./config.js";
import { startReconciler } from "./reconciler-service.js";

await runService({ name: "reconciler", loadConfig, start: (config, logger) => startReconciler(config, logger) });
