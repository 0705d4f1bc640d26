import { runService } from "@qbo-webhooks/service-kit";
import { loadConfig } from "./config.js";
import { startIngress } from "./ingress-service.js";

await runService({ name: "ingress", loadConfig, start: (config, logger) => startIngress(config, logger) });
