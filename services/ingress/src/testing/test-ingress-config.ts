import type { IngressConfig } from "../config.js";

/** An ingress configuration for tests: loopback, free ports, quiet; `overrides` for the rest. */
export function testIngressConfig(
  natsServers: readonly string[],
  verifierTokens: readonly string[],
  overrides: Partial<IngressConfig> = {},
): IngressConfig {
  return {
    natsServers,
    http: { port: 0, host: "127.0.0.1" },
    ops: { port: 0, host: "127.0.0.1" },
    verifierTokens,
    maxBodyBytes: 4 * 1024 * 1024,
    publishTimeoutMs: 2000,
    streamReplicas: 1,
    shutdownDeadlineMs: 8000,
    logLevel: "silent",
    exportTraces: false,
    ...overrides,
  };
}
