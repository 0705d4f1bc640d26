import type { Pipeline } from "@qbo-webhooks/processor/testing";

/**
 * The environment of a reconciler process managing QuickBooksCompany resources on a test API
 * server: the pipeline's NATS and sandbox, its loopback ports, Lease election and company
 * resources in `namespace` through `kubeconfig`. Callers add their own timing.
 */
export function companyReconcilerEnv(
  pipeline: Pipeline,
  options: { id: string; port: number; opsPort: number; kubeconfig: string; namespace: string; leaseName: string },
): Record<string, string> {
  const env = pipeline.processorEnv(options.id);
  return {
    PATH: process.env.PATH ?? "",
    NATS_URL: env.NATS_URL ?? "",
    QBO_API_BASE_URL: env.QBO_API_BASE_URL ?? "",
    QBO_CLIENT_ID: "client",
    QBO_CLIENT_SECRET: "secret",
    TOKEN_ENCRYPTION_KEY: env.TOKEN_ENCRYPTION_KEY ?? "",
    QBO_ENVIRONMENT: "sandbox",
    HTTP_PORT: String(options.port),
    HTTP_HOST: "127.0.0.1",
    OPS_PORT: String(options.opsPort),
    OPS_HOST: "127.0.0.1",
    RECONCILER_ID: options.id,
    KUBECONFIG: options.kubeconfig,
    LEADER_ELECTION: "kubernetes",
    LEADER_LEASE_NAME: options.leaseName,
    POD_NAMESPACE: options.namespace,
    COMPANY_RESOURCES: "true",
    LOG_LEVEL: "warn",
  };
}

/**
 * `qbo_company_status_writes_total{result}` of the reconciler whose ops port is `opsPort`: written,
 * deferred (over the rate limit) or conflict (409, computed again). 0 while it does not answer.
 */
export async function companyStatusWrites(
  opsPort: number,
  result: "written" | "deferred" | "conflict",
): Promise<number> {
  const text = await fetch(`http://127.0.0.1:${opsPort}/metrics`).then(
    (r) => r.text(),
    () => "",
  );
  const line = new RegExp(`^qbo_company_status_writes_total\\{[^}]*result="${result}"[^}]*\\} (\\d+)`, "m").exec(text);
  return Number(line?.[1] ?? 0);
}
