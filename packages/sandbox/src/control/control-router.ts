import { ENTITY_NAMES, type EntityName, Operation } from "@qbo-webhooks/contracts";
import express, { type NextFunction, type Request, type Response, Router } from "express";
import { z } from "zod";
import type { Company, QboEntity } from "../company/company.js";
import type { Sandbox } from "../sandbox.js";
import { SandboxError, type SandboxErrorCode } from "../sandbox-error.js";
import { buildBodies, type PayloadForm } from "../webhooks/notification-body.js";
import { WebhookFault } from "../webhooks/webhook-faults.js";

/** One change to make to a company, through the control API. */
export const ChangeRequest = z.object({
  entity: z.enum(ENTITY_NAMES),
  operation: Operation,
  /** The entity to change; for Merge, the one merged away. Not for Create. */
  id: z.string().optional(),
  /** For Merge: the entity that remains. */
  intoId: z.string().optional(),
  fields: z.record(z.string(), z.unknown()).optional(),
});
export type ChangeRequest = z.infer<typeof ChangeRequest>;

/** Applies a change to a company and returns the entity as it now is (undefined after Delete). */
export function applyChange(company: Company, change: ChangeRequest): QboEntity | undefined {
  const entity: EntityName = change.entity;
  const id = () => {
    if (!change.id) throw new SandboxError("INVALID_REQUEST", `${change.operation} needs an id`);
    return change.id;
  };
  switch (change.operation) {
    case "Create":
      return company.create(entity, change.fields);
    case "Update":
      return company.update(entity, id(), change.fields);
    case "Delete":
      company.delete(entity, id());
      return undefined;
    case "Merge":
      if (!change.intoId) throw new SandboxError("INVALID_REQUEST", "Merge needs intoId");
      return company.merge(entity, id(), change.intoId);
    case "Void":
      return company.void(entity, id());
    case "Emailed":
      return company.email(entity, id());
  }
}

const STATUS: Record<SandboxErrorCode, number> = {
  UNKNOWN_COMPANY: 404,
  UNKNOWN_APP: 404,
  NOT_FOUND: 404,
  OPERATION_NOT_ALLOWED: 422,
  INVALID_REQUEST: 400,
};

/** `/_sandbox`: everything a test or demo drives or reads: clock, companies, apps, faults, stats. */
export function controlRouter(sandbox: Sandbox): Router {
  const router = Router();
  router.use(express.json({ limit: "10mb" }));

  router.get("/clock", (_req, res) => {
    res.json({ now: new Date(sandbox.clock.now()).toISOString(), speed: sandbox.clock.speed });
  });
  router.post("/clock", async (req, res) => {
    const body = z
      .object({ speed: z.number().min(0).optional(), advanceMs: z.number().min(0).optional() })
      .parse(req.body);
    if (body.speed !== undefined) sandbox.clock.setSpeed(body.speed);
    if (body.advanceMs !== undefined) await sandbox.clock.advance(body.advanceMs);
    res.json({ now: new Date(sandbox.clock.now()).toISOString(), speed: sandbox.clock.speed });
  });

  router.get("/companies", (_req, res) => {
    res.json(sandbox.companies().map((c) => ({ realmId: c.realmId, name: c.name })));
  });
  router.post("/companies", (req, res) => {
    const body = z.object({ realmId: z.string().min(1).optional(), name: z.string().optional() }).parse(req.body ?? {});
    const company = sandbox.createCompany({
      ...(body.realmId ? { realmId: body.realmId } : {}),
      ...(body.name ? { name: body.name } : {}),
    });
    res.status(201).json({ realmId: company.realmId, name: company.name });
  });
  router.get("/companies/:realmId", (req, res) => {
    res.json(sandbox.company(req.params.realmId).snapshot());
  });
  router.post("/companies/:realmId/changes", (req, res) => {
    const company = sandbox.company(req.params.realmId);
    const changes = Array.isArray(req.body) ? z.array(ChangeRequest).parse(req.body) : ChangeRequest.parse(req.body);
    const results = (Array.isArray(changes) ? changes : [changes]).map(
      (change) => applyChange(company, change) ?? null,
    );
    res.json(Array.isArray(changes) ? results : results[0]);
  });

  // A change no webhook announces, with the notification bodies QuickBooks would have sent for it:
  // `npm run send-test-notification` signs one and sends it itself.
  router.post("/companies/:realmId/unannounced-changes", (req, res) => {
    const company = sandbox.company(req.params.realmId);
    const { result, changes } = company.unannounced(() => applyChange(company, ChangeRequest.parse(req.body)));
    const bodies = (form: PayloadForm) => buildBodies(changes, form, "intuit.sandbox").map((body) => body.text);
    res.json({
      entity: result ?? null,
      changes,
      notifications: { cloudevents: bodies("cloudevents"), legacy: bodies("legacy") },
    });
  });

  router.post("/apps", (req, res) => {
    res.status(201).json(sandbox.registerApp(req.body));
  });
  router.post("/apps/:appId/connections", (req, res) => {
    const { realmId } = z.object({ realmId: z.string() }).parse(req.body);
    res.status(201).json(sandbox.connect(req.params.appId, realmId));
  });
  router.delete("/apps/:appId/connections/:realmId", (req, res) => {
    sandbox.disconnect(req.params.appId, req.params.realmId);
    res.status(204).end();
  });
  router.get("/apps/:appId/deliveries", (req, res) => {
    res.json(sandbox.deliveries(req.params.appId));
  });
  router.put("/apps/:appId/faults", (req, res) => {
    const faults = z.array(WebhookFault).parse(req.body);
    sandbox.setWebhookFaults(req.params.appId, faults);
    res.json(faults);
  });
  router.post("/apps/:appId/:action", async (req, res) => {
    const webhooks = sandbox.webhooks(req.params.appId);
    switch (req.params.action) {
      case "pause":
        webhooks.pause();
        break;
      case "resume":
        webhooks.resume();
        break;
      case "reenable":
        webhooks.reenable();
        break;
      case "ping":
        return void res.json(await webhooks.ping());
      default:
        throw new SandboxError("INVALID_REQUEST", `unknown action ${req.params.action}: pause, resume, reenable, ping`);
    }
    res.json(webhooks.state());
  });

  router.put("/api-behaviour", (req, res) => {
    res.json(sandbox.setApiBehaviour(req.body ?? {}));
  });
  router.get("/stats", (_req, res) => {
    res.json(sandbox.apiStats());
  });

  router.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (err instanceof SandboxError)
      return void res.status(STATUS[err.code]).json({ error: err.code, message: err.message });
    if (err instanceof z.ZodError)
      return void res.status(400).json({ error: "INVALID_REQUEST", message: z.prettifyError(err) });
    next(err);
  });
  return router;
}
