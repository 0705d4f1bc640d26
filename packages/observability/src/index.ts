export type { Logger, LoggerOptions, LogLevel } from "./logger.js";
export { createLogger, LOG_LEVELS } from "./logger.js";
export { createMetricsRegistry } from "./metrics-registry.js";
export type { OpsEndpoints } from "./ops-server.js";
export { createOpsServer, handleOpsRequest } from "./ops-server.js";
export type { Telemetry, TelemetryOptions } from "./telemetry.js";
export { startTelemetry } from "./telemetry.js";
export type { HeaderCarrier } from "./trace-propagation.js";
export { extractTraceContext, injectTraceContext } from "./trace-propagation.js";
