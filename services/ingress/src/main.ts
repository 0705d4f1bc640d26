import { createLogger, startTelemetry } from "@qbo-webhooks/observability";
import { ConfigError, loadConfig } from "./config.js";
import { startIngress } from "./ingress-service.js";

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`ingress: ${err.message}\nSee the README's configuration table.\n`);
  process.exit(1);
}

const logger = createLogger({ service: "ingress", level: config.logLevel });
const telemetry = startTelemetry({ serviceName: "qbo-webhooks-ingress", exportOtlp: config.exportTraces });
const ingress = await startIngress(config, logger).catch((err: unknown) => {
  logger.fatal({ err }, "ingress failed to start");
  process.exit(1);
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) {
    logger.warn({ signal }, "second signal: exiting now");
    process.exit(1);
  }
  stopping = true;
  logger.info({ signal, deadlineMs: config.shutdownDeadlineMs }, "shutting down");
  const force = setTimeout(() => {
    logger.error("shutdown deadline passed: exiting with in-flight work");
    process.exit(1);
  }, config.shutdownDeadlineMs).unref();
  await ingress.close();
  await telemetry.shutdown();
  clearTimeout(force);
  logger.info("shut down cleanly");
  logger.flush(() => process.exit(0));
}

process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
