import { randomUUID } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import {
  CDC_UNSUPPORTED_ENTITIES,
  type EntityName,
  entityNameFromAnyCase,
  parseQboTimestamp,
} from "@qbo-webhooks/contracts";
import express, { type NextFunction, type Request, type Response, Router } from "express";
import type { Company, QboEntity } from "../company/company.js";
import { formatQboTime } from "../company/qbo-time.js";
import type { ApiBehaviour, RateLimiter } from "./api-behaviour.js";
import type { AuthResult } from "./oauth-store.js";
import {
  authenticationFault,
  gatewayPage,
  objectNotFound,
  serverFault,
  throttled,
  validationFault,
} from "./qbo-faults.js";
import { compareValues, fieldValue, matches, parseQuery, QueryError } from "./query-language.js";

export type ApiEndpoint = "read" | "query" | "cdc";

/** What the API router needs from the sandbox. */
export interface ApiHost {
  readonly behaviour: () => ApiBehaviour;
  readonly limiter: RateLimiter;
  readonly authenticate: (accessToken: string | undefined, realmId: string) => AuthResult;
  readonly company: (realmId: string) => Company | undefined;
  readonly now: () => number;
  readonly count: (realmId: string, endpoint: ApiEndpoint | "throttled" | "serverError") => void;
  /** Whether an injected server error hits this request, and which. */
  readonly serverError: () => 500 | 502 | 503 | undefined;
  /** A page of query results was sent (tests change data between pages through this). */
  readonly pageServed: (page: QueryPage) => void;
}

/** Which page of which query was answered. */
export interface QueryPage {
  readonly realmId: string;
  readonly entity: EntityName;
  readonly startPosition: number;
  readonly rows: number;
}

const MIN_MINOR_VERSION = 75;
const CDC_LOOKBACK_MS = 30 * 24 * 3600 * 1000;
const CDC_MAX_OBJECTS = 1000;

/** `/v3/company/{realmId}/...`: read, query and CDC with QuickBooks' shapes, limits and faults (QBO.md §4-§8). */
export function qboApiRouter(host: ApiHost): Router {
  const router = Router({ mergeParams: true });

  router.use("/v3/company/:realmId", async (req: Request<{ realmId: string }>, res: Response, next: NextFunction) => {
    const { realmId } = req.params;
    const behaviour = host.behaviour();
    const auth = host.authenticate(bearer(req), realmId);
    if (!auth.ok) return authenticationFault(res, host.now(), auth.detail);
    if (!host.limiter.tryAcquire(realmId, auth.appId, behaviour)) {
      host.count(realmId, "throttled");
      return throttled(res, host.now(), behaviour.throttleStatus);
    }
    res.once("close", () => host.limiter.release(realmId, auth.appId));
    host.count(realmId, endpointOf(req.path));
    if (behaviour.latencyMs > 0) await delay(behaviour.latencyMs);
    const injected = host.serverError();
    if (injected) {
      host.count(realmId, "serverError");
      return injected === 500 ? serverFault(res, faultStyle(host)) : gatewayPage(res, injected);
    }
    const minor = req.query.minorversion;
    if (minor !== undefined && !(Number(minor) >= MIN_MINOR_VERSION)) {
      // Minor versions 1-74 are no longer served (QBO.md §5).
      return validationFault(
        res,
        faultStyle(host),
        "2010",
        `Invalid minorversion ${String(minor)}`,
        `minorversion must be ${MIN_MINOR_VERSION} or later`,
      );
    }
    next();
  });

  router.get("/v3/company/:realmId/query", (req: Request<{ realmId: string }>, res) =>
    runQuery(host, req.params.realmId, String(req.query.query ?? ""), res),
  );
  router.post(
    "/v3/company/:realmId/query",
    express.text({ type: () => true }),
    (req: Request<{ realmId: string }>, res) => runQuery(host, req.params.realmId, String(req.body ?? ""), res),
  );
  router.get("/v3/company/:realmId/cdc", (req: Request<{ realmId: string }>, res) => runCdc(host, req, res));
  router.get("/v3/company/:realmId/companyinfo/:id", (req: Request<{ realmId: string; id: string }>, res) => {
    const { realmId, id } = req.params;
    if (id !== realmId || !host.company(realmId)) return objectNotFound(res, faultStyle(host), `CompanyInfo ${id}`);
    res.json({
      CompanyInfo: { Id: realmId, CompanyName: host.company(realmId)?.name, Country: "US", SyncToken: "0" },
      time: formatQboTime(host.now()),
    });
  });
  router.get(
    "/v3/company/:realmId/:entity/:id",
    (req: Request<{ realmId: string; entity: string; id: string }>, res) => {
      const { realmId, entity: word, id } = req.params;
      const entity = entityNameFromAnyCase(word);
      const company = host.company(realmId);
      const data = entity && company?.get(entity, id);
      if (!entity || !data) return objectNotFound(res, faultStyle(host), `${word} ${id}`);
      res.json({ [entity]: data, time: formatQboTime(host.now()) });
    },
  );
  return router;
}

function runQuery(host: ApiHost, realmId: string, text: string, res: Response): void {
  let query: ReturnType<typeof parseQuery>;
  try {
    query = parseQuery(text);
  } catch (err) {
    if (!(err instanceof QueryError)) throw err;
    validationFault(res, faultStyle(host), "4000", err.message);
    return;
  }
  const all = (host.company(realmId)?.list(query.entity) ?? []).filter((e) => matches(e, query.where));
  const time = formatQboTime(host.now());
  if (query.count) {
    res.json({ QueryResponse: { totalCount: all.length }, time });
    return;
  }
  const ordered = sortEntities(all, query.orderBy);
  const page = ordered.slice(query.startPosition - 1, query.startPosition - 1 + query.maxResults);
  res.json({
    QueryResponse: page.length
      ? { [query.entity]: page, startPosition: query.startPosition, maxResults: page.length }
      : {},
    time,
  });
  host.pageServed({ realmId, entity: query.entity, startPosition: query.startPosition, rows: page.length });
}

function sortEntities(entities: QboEntity[], orderBy: { field: string; descending: boolean } | undefined): QboEntity[] {
  const field = orderBy?.field ?? "Id";
  const sign = orderBy?.descending ? -1 : 1;
  return [...entities].sort((a, b) => sign * compareValues(field, fieldValue(a, field), String(fieldValue(b, field))));
}

/** CDC: changed and deleted objects since a time, deleted last, 1,000 objects at most in all, 30 days back (QBO.md §4). */
function runCdc(host: ApiHost, req: Request<{ realmId: string }>, res: Response): void {
  const style = faultStyle(host);
  const words = String(req.query.entities ?? "")
    .split(",")
    .map((word) => word.trim())
    .filter(Boolean);
  const unsupported = words.filter((word) => CDC_UNSUPPORTED_ENTITIES.has(entityNameFromAnyCase(word) ?? word));
  if (unsupported.length > 0) {
    validationFault(res, style, "2030", `CDC does not support ${unsupported.join(", ")}`);
    return;
  }
  const entities = words.map(entityNameFromAnyCase);
  if (entities.length === 0 || entities.some((e) => e === undefined)) {
    validationFault(res, style, "2030", `Invalid entities: ${String(req.query.entities ?? "")}`);
    return;
  }
  const since = parseQboTimestamp(String(req.query.changedSince ?? ""));
  if (Number.isNaN(since)) {
    validationFault(res, style, "2030", "changedSince must be a date-time");
    return;
  }
  if (host.now() - since > CDC_LOOKBACK_MS) {
    validationFault(res, style, "2030", "changedSince may be at most 30 days ago");
    return;
  }
  const company = host.company(req.params.realmId);
  let budget = CDC_MAX_OBJECTS;
  const responses = (entities as EntityName[]).map((entity) => {
    const { changed, deleted } = company?.changedSince(entity, since) ?? { changed: [], deleted: [] };
    const objects = [
      ...sortEntities(changed, { field: "MetaData.LastUpdatedTime", descending: false }),
      ...deleted.map((t) => ({
        status: "Deleted",
        domain: "QBO",
        Id: t.id,
        MetaData: { LastUpdatedTime: formatQboTime(t.deletedAt) },
      })),
    ].slice(0, Math.max(0, budget));
    budget -= objects.length;
    return objects.length
      ? { [entity]: objects, startPosition: 1, maxResults: objects.length, totalCount: objects.length }
      : { startPosition: 1, maxResults: 0, totalCount: 0 };
  });
  res.json({ CDCResponse: [{ QueryResponse: responses }], time: formatQboTime(host.now()) });
}

function bearer(req: Request): string | undefined {
  const header = req.get("authorization") ?? "";
  return /^bearer\s+(.+)$/i.exec(header)?.[1];
}

/** Which endpoint a path under `/v3/company/{realmId}` is. */
export function endpointOf(path: string): ApiEndpoint {
  if (/\/query$/.test(path)) return "query";
  if (/\/cdc$/.test(path)) return "cdc";
  return "read";
}

function faultStyle(host: ApiHost) {
  return { lowerCase: host.behaviour().lowerCaseFaults, now: host.now() };
}

/** `intuit_tid` goes on every reply, errors included (QBO.md §8). */
export function intuitTid(_req: Request, res: Response, next: NextFunction): void {
  res.setHeader("intuit_tid", randomUUID());
  next();
}
