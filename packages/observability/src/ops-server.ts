import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Registry } from "prom-client";

export interface OpsEndpoints {
  readonly registry: Registry;
  /** Whether the service can do its work now (NATS connected, streams usable). */
  readonly isReady: () => boolean;
  /**
   * Problems that need a person (a refused client secret, say): while there are any, `/readyz`
   * answers 503 and lists them, one per line.
   */
  readonly problems?: () => readonly string[];
}

/**
 * Serves `GET /healthz` (the process is alive), `/readyz` (it can work) and `/metrics`; answers
 * false for other paths so a service can mount it in front of its own routes.
 */
export function handleOpsRequest(endpoints: OpsEndpoints, req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method !== "GET" && req.method !== "HEAD") return false;
  const path = (req.url ?? "").split("?")[0];
  switch (path) {
    case "/healthz":
      reply(res, 200, "text/plain", "ok\n");
      return true;
    case "/readyz": {
      const problems = endpoints.problems?.() ?? [];
      const ready = endpoints.isReady() && problems.length === 0;
      const lines = [ready ? "ready" : "not ready", ...problems];
      reply(res, ready ? 200 : 503, "text/plain", `${lines.join("\n")}\n`);
      return true;
    }
    case "/metrics":
      endpoints.registry.metrics().then(
        (text) => reply(res, 200, endpoints.registry.contentType, text),
        (err: unknown) => reply(res, 500, "text/plain", `metrics failed: ${String(err)}\n`),
      );
      return true;
    default:
      return false;
  }
}

function reply(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { "content-type": contentType, "cache-control": "no-store" }).end(body);
}

/** A standalone server for the ops endpoints, for services with no HTTP port of their own. */
export function createOpsServer(endpoints: OpsEndpoints): Server {
  return createServer((req, res) => {
    if (!handleOpsRequest(endpoints, req, res)) reply(res, 404, "text/plain", "not found\n");
  });
}
