import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { booleanFlag, commaList, commonEnv, exportsTraces, integer, loadNatsAuth } from "./env-fields.js";
import { ConfigError, loadEnv } from "./load-env.js";

const HERE = fileURLToPath(import.meta.url);
const Schema = z.object({ ...commonEnv(9000), COUNT: integer(1, 10, 3), FLAG: booleanFlag(false) });

describe("load-env", () => {
  it("load-env - applies defaults shared by every service", () => {
    expect(loadEnv(Schema, {})).toMatchObject({
      NATS_URL: ["nats://127.0.0.1:4222"],
      OPS_PORT: 9000,
      OPS_HOST: "0.0.0.0",
      NATS_STREAM_REPLICAS: 1,
      SHUTDOWN_DEADLINE_MS: 8000,
      LOG_LEVEL: "info",
      COUNT: 3,
      FLAG: false,
    });
  });

  it('load-env - reads "false" as false, unlike z.coerce.boolean', () => {
    expect(loadEnv(Schema, { FLAG: "false" }).FLAG).toBe(false);
    expect(loadEnv(Schema, { FLAG: "true" }).FLAG).toBe(true);
  });

  it("load-env - names every bad variable at once, and no value", () => {
    const attempt = () => loadEnv(Schema, { COUNT: "11", FLAG: "yes", NATS_URL: "secret-host:4222" });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/COUNT must be at most 10[\s\S]*FLAG must be "true" or "false"|FLAG[\s\S]*COUNT/);
    expect(attempt).toThrow(/NATS_URL/);
    expect(attempt).not.toThrow(/secret-host/);
  });

  it("env-fields - splits lists and decides trace export", () => {
    expect(commaList(" a, ,b ")).toEqual(["a", "b"]);
    expect(exportsTraces({ OTEL_SDK_DISABLED: false, OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" })).toBe(true);
    expect(exportsTraces({ OTEL_SDK_DISABLED: true, OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" })).toBe(false);
    expect(exportsTraces({ OTEL_SDK_DISABLED: false })).toBe(false);
  });

  it("nats auth - one way to authenticate, a password with its user, a certificate with its key, files that exist", () => {
    expect(loadNatsAuth({})).toEqual({});
    expect(loadNatsAuth({ NATS_USER: "ingress", NATS_PASSWORD: "pw" })).toEqual({ user: "ingress", password: "pw" });
    expect(loadNatsAuth({ NATS_CA: HERE })).toEqual({ tls: { caFile: HERE } });
    expect(() => loadNatsAuth({ NATS_USER: "a", NATS_TOKEN: "t" })).toThrow(/NATS_TOKEN cannot be set with NATS_USER/);
    expect(() => loadNatsAuth({ NATS_PASSWORD: "pw" })).toThrow(/NATS_PASSWORD needs NATS_USER/);
    expect(() => loadNatsAuth({ NATS_CERT: HERE })).toThrow(/NATS_CERT and NATS_KEY go together/);
    expect(() => loadNatsAuth({ NATS_CREDS: "/no/such/file.creds" })).toThrow(/NATS_CREDS names no file/);
    expect(() => loadNatsAuth({ NATS_USER: "a", NATS_PASSWORD: "s3cret", NATS_TOKEN: "t" })).not.toThrow(/s3cret/);
  });
});
