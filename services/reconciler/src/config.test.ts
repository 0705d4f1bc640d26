import { undocumentedVariables } from "@qbo-webhooks/service-kit/testing";
import { describe, expect, it } from "vitest";
import { loadConfig, ReconcilerEnv } from "./config.js";

const required = {
  QBO_CLIENT_ID: "id",
  QBO_CLIENT_SECRET: "secret",
  TOKEN_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString("base64"),
};

describe("reconciler config", () => {
  it("config - every variable it reads is in the README's tables", () => {
    expect(undocumentedVariables(ReconcilerEnv)).toEqual([]);
  });

  it("config - the OAuth callback on the public port, /connect and health on the ops port, connecting off without a token", () => {
    const config = loadConfig(required);
    expect(config).toMatchObject({
      http: { port: 8083, host: "0.0.0.0", variable: "HTTP_PORT" },
      ops: { port: 9093, host: "0.0.0.0", variable: "OPS_PORT" },
      operatorToken: undefined,
      redirectUri: "http://127.0.0.1:8083/oauth/callback",
    });
  });

  it("config - an operator token shorter than 32 characters is refused, without echoing it", () => {
    const attempt = () => loadConfig({ ...required, OPERATOR_TOKEN: "short-secret" });
    expect(attempt).toThrow(/OPERATOR_TOKEN must be at least 32 characters/);
    expect(attempt).not.toThrow(/short-secret/);
  });

  it("config - production refuses a sandbox URL for QuickBooks unless allowed explicitly", () => {
    const sandboxUrl = { ...required, QBO_API_BASE_URL: "http://127.0.0.1:8090" };
    expect(() => loadConfig(sandboxUrl)).toThrow(/QBO_API_BASE_URL is not an Intuit endpoint/);
    expect(loadConfig({ ...sandboxUrl, QBO_ENVIRONMENT: "sandbox" }).apiBaseUrl).toBe("http://127.0.0.1:8090");
  });

  it("config - a Kubernetes Lease only when configured, in the pod's namespace, never guessed from the environment", () => {
    // In a pod that was not configured for it (no RBAC for Leases, perhaps): the KV lock.
    expect(loadConfig({ ...required, KUBERNETES_SERVICE_HOST: "10.96.0.1" }).leader.mode).toBe("nats");
    expect(() => loadConfig({ ...required, LEADER_ELECTION: "kubernetes" })).toThrow(
      /POD_NAMESPACE is required with LEADER_ELECTION=kubernetes/,
    );
    expect(
      loadConfig({ ...required, LEADER_ELECTION: "kubernetes", POD_NAMESPACE: "qbo", LEADER_LEASE_NAME: "qbo-lead" })
        .leader,
    ).toMatchObject({ mode: "kubernetes", namespace: "qbo", leaseName: "qbo-lead" });
  });
});
