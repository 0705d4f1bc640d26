import { ConfigError } from "@qbo-webhooks/service-kit";
import { undocumentedVariables } from "@qbo-webhooks/service-kit/testing";
import { describe, expect, it } from "vitest";
import { IngressEnv, loadConfig } from "./config.js";

describe("config", () => {
  it("config - every variable it reads is in the README's tables", () => {
    expect(undocumentedVariables(IngressEnv)).toEqual([]);
  });

  it("config - applies the documented defaults", () => {
    expect(loadConfig({ QBO_VERIFIER_TOKENS: "a" })).toEqual({
      natsServers: ["nats://127.0.0.1:4222"],
      natsAuth: {},
      http: { port: 8080, host: "0.0.0.0", variable: "HTTP_PORT" },
      ops: { port: 9090, host: "0.0.0.0", variable: "OPS_PORT" },
      verifierTokens: ["a"],
      maxBodyBytes: 4 * 1024 * 1024,
      publishTimeoutMs: 2000,
      streamReplicas: 1,
      shutdownDeadlineMs: 8000,
      logLevel: "info",
      exportTraces: false,
    });
  });

  it("config - splits comma-separated tokens and servers, ignoring blanks and spaces", () => {
    const config = loadConfig({ QBO_VERIFIER_TOKENS: " new , old ,", NATS_URL: "nats://a:4222, nats://b:4222" });
    expect(config.verifierTokens).toEqual(["new", "old"]);
    expect(config.natsServers).toEqual(["nats://a:4222", "nats://b:4222"]);
  });

  it("config - exports traces only when an OTLP endpoint is set and the SDK is not disabled", () => {
    const base = { QBO_VERIFIER_TOKENS: "a", OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" };
    expect(loadConfig(base).exportTraces).toBe(true);
    expect(loadConfig({ ...base, OTEL_SDK_DISABLED: "true" }).exportTraces).toBe(false);
  });

  it.each([
    [{}, /QBO_VERIFIER_TOKENS is required/],
    [{ QBO_VERIFIER_TOKENS: " , " }, /QBO_VERIFIER_TOKENS must hold at least one verifier token/],
    [{ QBO_VERIFIER_TOKENS: "a", HTTP_PORT: "http" }, /HTTP_PORT must be a whole number/],
    [{ QBO_VERIFIER_TOKENS: "a", MAX_BODY_BYTES: "10" }, /MAX_BODY_BYTES must be at least 1024/],
    [{ QBO_VERIFIER_TOKENS: "a", PUBLISH_TIMEOUT_MS: "3000" }, /PUBLISH_TIMEOUT_MS must be at most 2500/],
    [{ QBO_VERIFIER_TOKENS: "a", NATS_URL: "localhost:4222" }, /NATS_URL.*nats:\/\/host:4222/],
    [{ QBO_VERIFIER_TOKENS: "a", LOG_LEVEL: "verbose" }, /LOG_LEVEL must be one of fatal, error/],
    [{ QBO_VERIFIER_TOKENS: "a", OTEL_SDK_DISABLED: "yes" }, /OTEL_SDK_DISABLED must be "true" or "false"/],
    [{ QBO_VERIFIER_TOKENS: "a", SHUTDOWN_DEADLINE_MS: "1500" }, /SHUTDOWN_DEADLINE_MS must exceed PUBLISH_TIMEOUT_MS/],
  ])("config - rejects %j with a message naming the variable", (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it("config - lists every bad variable at once, and never echoes a secret", () => {
    const attempt = () => loadConfig({ HTTP_PORT: "-1", LOG_LEVEL: "loud", NATS_URL: "s3cret-host" });
    expect(attempt).toThrow(/QBO_VERIFIER_TOKENS[\s\S]*HTTP_PORT|HTTP_PORT[\s\S]*QBO_VERIFIER_TOKENS/);
    expect(attempt).toThrow(/LOG_LEVEL/);
    expect(attempt).not.toThrow(/s3cret/);
  });
});
