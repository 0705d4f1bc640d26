import { createLogger, type Logger, type LogLevel, type Telemetry } from "@qbo-webhooks/observability";
import { PortInUseError } from "./listen.js";
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
 * connects; SIGTERM or SIGINT (also one that arrives while it starts) close the service within its
 * deadline and exit 0; a second signal
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
  // Listening before the service starts: a SIGTERM while it starts (its ops server may already
  // answer /readyz) is kept and served once it has started, instead of killing it outright.
  let stopping: string | undefined;
  let stop: ((signal: string) => Promise<void>) | undefined;
  const onSignal = (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    stopping = signal;
    if (stop) void stop(signal);
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));

  const { startTelemetry } = await import("@qbo-webhooks/observability/telemetry");
  const telemetry = startTelemetry({ serviceName: `qbo-webhooks-${definition.name}`, exportOtlp: config.exportTraces });
  const service = await definition.start(config, logger, telemetry).catch((err: unknown) => {
    if (err instanceof PortInUseError) {
      // The operator's to fix, not ours to trace: one line says which port and what moves it.
      process.stderr.write(`${definition.name}: ${err.message}\n`);
    } else {
      logger.fatal({ err }, `${definition.name} failed to start`);
    }
    process.exit(1);
  });

  stop = async (signal: string) => {
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
  if (stopping) void stop(stopping);
}
