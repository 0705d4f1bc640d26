import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import { context, propagation, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { Logger } from "@qbo-webhooks/observability";
import express, { type Request, type Response } from "express";
import type { AckOutcome, IngressMetrics } from "./ingress-metrics.js";
import { readBody } from "./read-body.js";
import { answer, createWebhookHandler, type WebhookExchange, type WebhookHandlerDeps } from "./webhook-handler.js";

export const WEBHOOK_PATH = "/webhooks/quickbooks";

export interface AppDeps extends WebhookHandlerDeps {
  readonly maxBodyBytes: number;
  readonly metrics: IngressMetrics;
  readonly logger: Logger;
  /** True once shutdown began: answer in-flight requests, refuse new ones. */
  readonly isClosing: () => boolean;
}

/**
 * The ingress's public port: `POST /webhooks/quickbooks` and nothing else (the ops endpoints are on
 * their own port, so the internet never sees metrics or health).
 *
 * QuickBooks' requests (`POST` to the exact path) go straight to the webhook's handler. Express
 * routes everything else: the same path spelt otherwise (a query, a trailing slash, other case),
 * which reaches the same handler, the 405 and the 404. On the webhook's path express' router and
 * request decorations cost a bare express handler most of its time, which the handler never uses
 * (see README, "CPU per change").
 */
export function createRequestListener(deps: AppDeps): RequestListener {
  const receive = receiveWebhook(deps);
  const app = createExpressApp(deps, receive);
  return (req, res) => {
    if (req.method === "POST" && req.url === WEBHOOK_PATH) receive(req, res);
    else app(req, res);
  };
}

function createExpressApp(deps: AppDeps, receive: RequestListener): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);

  app.post(WEBHOOK_PATH, (req: Request, res: Response) => receive(req, res));
  // The endpoint answers JSON, whatever went wrong, with the one method it takes. Counted, not timed:
  // no notification came, so it is not one of QuickBooks' deliveries.
  app.all(WEBHOOK_PATH, (req: Request, res: Response) => {
    closeIfClosing(deps, res);
    res.setHeader("allow", "POST");
    deps.metrics.requests.inc({ code: "405", reason: "method_not_allowed" });
    answer({ res }, 405, "method_not_allowed", { error: `${req.method} is not allowed here: use POST` });
  });
  app.use((_req: Request, res: Response) => {
    closeIfClosing(deps, res);
    res.status(404).type("text").send("not found\n");
  });
  return app;
}

/** 499, as nginx logs it: the client left before any answer was sent. */
const CLIENT_CLOSED = 499;

/**
 * Observes the request (its span, and its metrics once answered), refuses it while closing, reads
 * its body and hands it to the webhook handler; answers what fails on the way, the body's 413
 * included.
 */
function receiveWebhook(deps: AppDeps): RequestListener {
  const handle = createWebhookHandler(deps);
  const read = readBody(deps.maxBodyBytes);
  return (req, res) => {
    const exchange = observeWebhookRequest(deps, req, res);
    if (closeIfClosing(deps, res)) {
      // Not stored, so not 200: QuickBooks retries, reaching a replica that is not stopping.
      answer(exchange, 503, "shutting_down", { error: "shutting down, retry later" });
      return;
    }
    read(req)
      .then((body) => handle(exchange, body))
      .catch((err: unknown) => answerFailure(deps, exchange, err));
  };
}

/** The answer to a request whose body could not be read, or whose handling threw. */
function answerFailure(deps: AppDeps, exchange: WebhookExchange, err: unknown): void {
  const { req, res } = exchange;
  if (res.headersSent) {
    deps.logger.error({ err }, "webhook request failed after its answer was sent");
    return;
  }
  const status = httpStatusOf(err);
  if (status === 413) {
    deps.logger.warn({ limit: deps.maxBodyBytes, length: req.headers["content-length"] }, "webhook body too large");
    // The rest of the body is never read: the connection closes with the answer.
    res.setHeader("connection", "close");
    answer(exchange, 413, "too_large", { error: `body exceeds ${deps.maxBodyBytes} bytes` });
  } else if (status !== undefined && status >= 400 && status < 500) {
    deps.logger.warn({ err }, "malformed webhook request");
    answer(exchange, 400, "bad_request", { error: err instanceof Error ? err.message : "malformed request" });
  } else {
    deps.logger.error({ err }, "webhook request failed");
    answer(exchange, 503, "internal_error", { error: "temporarily unavailable, retry later" });
  }
}

/** Keep-alive connections would otherwise keep a closing server open for ever. Answers whether closing. */
function closeIfClosing(deps: AppDeps, res: ServerResponse): boolean {
  if (!deps.isClosing()) return false;
  res.setHeader("connection", "close");
  return true;
}

/** Starts the request's span and records its metrics once the answer is sent. */
function observeWebhookRequest(deps: AppDeps, req: IncomingMessage, res: ServerResponse): WebhookExchange {
  const started = process.hrtime.bigint();
  const parent = propagation.extract(context.active(), req.headers);
  const span = trace
    .getTracer("ingress")
    .startSpan(
      `POST ${WEBHOOK_PATH}`,
      { kind: SpanKind.SERVER, attributes: { "http.request.method": "POST" } },
      parent,
    );
  const exchange: WebhookExchange = { req, res, span };
  res.once("close", () => {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const status = res.headersSent ? res.statusCode : CLIENT_CLOSED;
    const reason = exchange.reason ?? (res.headersSent ? "internal_error" : "client_closed");
    const outcome = outcomeOf(status);
    deps.metrics.ackDuration.observe({ outcome }, seconds);
    deps.metrics.lastAnswer.setToCurrentTime({ outcome });
    deps.metrics.requests.inc({ code: String(status), reason });
    span.setAttributes({ "http.response.status_code": status, "qbo.webhook.reason": reason });
    if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: reason });
    span.end();
  });
  return exchange;
}

function outcomeOf(status: number): AckOutcome {
  if (status < 300) return "accepted";
  // 499: QuickBooks hung up before the answer (its 3 s passed); it counts that as a failed delivery.
  return status < 500 && status !== CLIENT_CLOSED ? "rejected" : "failed";
}

function httpStatusOf(err: unknown): number | undefined {
  if (typeof err === "object" && err !== null && "status" in err && typeof err.status === "number") return err.status;
  return undefined;
}
