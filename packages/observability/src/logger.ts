import { type Logger, pino } from "pino";

export type { Logger } from "pino";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  readonly service: string;
  readonly level: LogLevel;
  /** Where lines go; stdout when omitted. Tests pass a stream to read what was logged. */
  readonly destination?: NodeJS.WritableStream;
}

// Secrets must never reach a log line, even when a whole object is logged by mistake.
const REDACT_PATHS = [
  "*.authorization",
  "*.token",
  "*.tokens",
  "*.secret",
  "*.password",
  "*.verifierTokens",
  '*["intuit-signature"]',
  "headers.authorization",
  'headers["intuit-signature"]',
];

/** A JSON logger for one service: one line per record, level as a label, secrets redacted. */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: options.service },
      formatters: { level: (label) => ({ level: label }) },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    },
    options.destination ?? pino.destination({ sync: false }),
  );
}
