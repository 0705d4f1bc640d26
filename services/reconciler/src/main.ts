import { runService } from "@qbo-webhooks/service-kit";
import { loadConfig } from "./config.js";
import { startReconciler } from "./reconciler-service.js";

await runService({ name: "reconciler", loadConfig, start: (config, logger) => startReconciler(config, logger) });
