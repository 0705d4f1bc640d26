import { ConfigError } from "@qbo-webhooks/service-kit";
import { undocumentedVariables } from "@qbo-webhooks/service-kit/testing";
import { describe, expect, it } from "vitest";
import { loadConfig, ProcessorEnv } from "./config.js";

const required = {
  QBO_CLIENT_ID: "id",
  QBO_CLIENT_SECRET: "secret",
  TOKEN_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString("base64"),
};

describe("processor config", () => {
  it("config - every variable it reads is in the README's tables", () => {
    expect(undocumentedVariables(ProcessorEnv)).toEqual([]);
  });

  it("config - defaults to QuickBooks production, CDC fetching and no delivery", () => {
    const config = loadConfig(required);
    expect(config).toMatchObject({
      apiBaseUrl: "https://quickbooks.api.intuit.com",
      tokenUrl: "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
      fetchStrategy: "cdc",
      partitions: 64,
    });
    expect(config.delivery).toBeUndefined();
  });

  it("config - the sandbox's token endpoint follows QBO_API_BASE_URL", () => {
    const sandbox = { ...required, QBO_ENVIRONMENT: "sandbox", QBO_API_BASE_URL: "http://127.0.0.1:8090" };
    expect(loadConfig(sandbox).tokenUrl).toBe("http://127.0.0.1:8090/oauth2/v1/tokens/bearer");
  });

  it("config - production refuses endpoints other than Intuit's (a sandbox URL) unless allowed explicitly", () => {
    const production = { ...required, QBO_ENVIRONMENT: "production", QBO_API_BASE_URL: "http://127.0.0.1:8090" };
    expect(() => loadConfig(production)).toThrow(/QBO_API_BASE_URL is not an Intuit endpoint/);
    expect(() => loadConfig({ ...production, QBO_API_BASE_URL: "https://quickbooks.api.intuit.com" })).not.toThrow();
    expect(loadConfig({ ...production, QBO_ALLOW_CUSTOM_ENDPOINTS: "true" }).apiBaseUrl).toBe("http://127.0.0.1:8090");
  });

  it.each([
    [{}, /QBO_CLIENT_ID is required[\s\S]*TOKEN_ENCRYPTION_KEY is required/],
    [{ ...required, TOKEN_ENCRYPTION_KEY: "c2hvcnQ=" }, /TOKEN_ENCRYPTION_KEY must be 32 bytes/],
    [{ ...required, DELIVERY_URL: "https://app.example.com/hook" }, /DELIVERY_SECRET is required with DELIVERY_URL/],
    [{ ...required, FETCH_STRATEGY: "guess" }, /FETCH_STRATEGY must be "cdc" or "query"/],
  ])("config - rejects %j naming the variable, never its value", (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
    expect(() => loadConfig(env)).not.toThrow(/c2hvcnQ=|secret"/);
  });

  it("config - DELIVERY_URL with its secret turns delivery on", () => {
    const secret = `whsec_${Buffer.alloc(32, 2).toString("base64")}`;
    expect(
      loadConfig({ ...required, DELIVERY_URL: "https://app.example.com/hook", DELIVERY_SECRET: secret }).delivery,
    ).toEqual({
      url: "https://app.example.com/hook",
      secret,
      timeoutMs: 10_000,
      retryForMs: 24 * 3600_000,
      retryCapMs: 300_000,
    });
  });
});
