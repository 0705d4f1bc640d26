import { createLogger, type Logger, type LogLevel, type Telemetry } from "@qbo-webhooks/observability";
import { ConfigError } from "./load-env.js";

export interface RunningService {
  /** Stops intake, finishes or releases in-flight work, drains NATS. */
  close(): Promise<void>;
}

export interface ServiceDefinition<C> {
  /** Short name, e.g. `ingress`; the service is `qbo-webhooks-<name>` in traces. */
  readonly name: string;
  /** Reads and validates the configuration; throws ConfigError. */
  readonly loadConfig: (env: NodeJS.ProcessEnv) => C & {
    readonly logLevel: LogLevel;
    readonly shutdownDeadlineMs: number;
    readonly exportTraces: boolean;
  };
  readonly start: (config: C, logger: Logger, telemetry: Telemetry) => Promise<RunningService>;
}

/**
 * The lifecycle every service's main.ts shares: configuration errors exit 1 before anything
 * connects; SIGTERM or SIGINT close the service within its deadline and exit 0; a second signal
 * or the deadline exits 1.
 */
export async function runService<C>(definition: ServiceDefinition<C>): Promise<void> {
  let config: ReturnType<ServiceDefinition<C>["loadConfig"]>;
  try {
    config = definition.loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${definition.name}: ${err.message}\nSee the README's configuration table.\n`);
    process.exit(1);
  }
  const logger = createLogger({ service: definition.name, level: config.logLevel });
  const { startTelemetry } = await import("@qbo-webhooks/observability/telemetry");
  const telemetry = startTelemetry({ serviceName: `qbo-webhooks-${definition.name}`, exportOtlp: config.exportTraces });
  const service = await definition.start(config, logger, telemetry).catch((err: unknown) => {
    logger.fatal({ err }, `${definition.name} failed to start`);
    process.exit(1);
  });

  let stopping = false;
  const shutdown = async (signal: string) => {
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
    await service.close();
    await telemetry.shutdown();
    clearTimeout(force);
    logger.info("shut down cleanly");
    logger.flush(() => process.exit(0));
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}
