export { inSpan } from "./in-span.js";
export type { Logger, LoggerOptions, LogLevel } from "./logger.js";
export { createLogger, LOG_LEVELS } from "./logger.js";
export { createMetricsRegistry } from "./metrics-registry.js";
export type { OpsEndpoints } from "./ops-server.js";
export { createOpsServer, exportReadiness, handleOpsRequest } from "./ops-server.js";
// startTelemetry is at "@qbo-webhooks/observability/telemetry": the OpenTelemetry SDK takes a second or
// two to load, which a command-line tool importing the logger should not pay.
export type { Telemetry, TelemetryOptions } from "./telemetry.js";
export type { HeaderCarrier } from "./trace-propagation.js";
export { extractTraceContext, injectTraceContext } from "./trace-propagation.js";
export { VERSION } from "./version.js";
