// Its own entry: the OpenTelemetry SDK it loads stays out of what only needs the kit (the CLI).
import { runService } from "@qbo-webhooks/service-kit/run-service";
import { loadConfig } from "./config.js";
import { startIngress } from "./ingress-service.js";

await runService({ name: "ingress", loadConfig, start: (config, logger) => startIngress(config, logger) });
