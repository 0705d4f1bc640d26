import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Gauge, type Registry } from "prom-client";

export interface OpsEndpoints {
  readonly registry: Registry;
  /** Whether the service can do its work now (NATS connected, streams usable). */
  readonly isReady: () => boolean;
  /** Whether its NATS connection is up (part of being ready; exported apart, so an alert can name NATS). */
  readonly natsConnected: () => boolean;
  /**
   * Problems that need a person (a refused client secret, say): while there are any, `/readyz`
   * answers 503 and lists them, one per line.
   */
  readonly problems?: () => readonly string[];
}

/**
 * The endpoints, with `qbo_ready` (1 while `/readyz` would answer 200) and `qbo_nats_connected`
 * registered. Alerts read them (a pod that is up but cannot work counts as missing); call once per
 * registry.
 */
export function exportReadiness(endpoints: OpsEndpoints): OpsEndpoints {
  new Gauge({
    name: "qbo_ready",
    help: "1 while this replica can do its work (what /readyz answers), 0 while it cannot.",
    registers: [endpoints.registry],
    collect() {
      this.set(isReady(endpoints) ? 1 : 0);
    },
  });
  new Gauge({
    name: "qbo_nats_connected",
    help: "1 while this replica's NATS connection is up, 0 while NATS is unreachable.",
    registers: [endpoints.registry],
    collect() {
      this.set(endpoints.natsConnected() ? 1 : 0);
    },
  });
  return endpoints;
}

function isReady(endpoints: OpsEndpoints): boolean {
  return endpoints.isReady() && (endpoints.problems?.() ?? []).length === 0;
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
      const ready = isReady(endpoints);
      const lines = [ready ? "ready" : "not ready", ...(endpoints.problems?.() ?? [])];
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

/**
 * A standalone server for the ops endpoints (readiness exported), for services with no HTTP port of
 * their own.
 */
export function createOpsServer(endpoints: OpsEndpoints): Server {
  exportReadiness(endpoints);
  return createServer((req, res) => {
    if (!handleOpsRequest(endpoints, req, res)) reply(res, 404, "text/plain", "not found\n");
  });
}
