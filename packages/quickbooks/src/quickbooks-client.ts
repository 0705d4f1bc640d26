import { setTimeout as sleep } from "node:timers/promises";
import { SpanKind, trace } from "@opentelemetry/api";
import type { EntityName } from "@qbo-webhooks/contracts";
import { backoffMs } from "@qbo-webhooks/messaging";
import { inSpan, type Logger } from "@qbo-webhooks/observability";
import { Counter, type Registry } from "prom-client";
import { z } from "zod";
import { QuickBooksError } from "./quickbooks-error.js";
import { readFault } from "./read-fault.js";
import { RealmRateLimiter } from "./realm-rate-limiter.js";

/** Where an app's access tokens come from; `refresh` is called once per call after a 401. */
export interface TokenSource {
  accessToken(realmId: string): Promise<string>;
  /** A fresh access token, replacing `rejected`. */
  refresh(realmId: string, rejected: string): Promise<string>;
}

export type ApiOperation = "read" | "query" | "cdc";

const CompanyInfoAnswer = z.object({
  CompanyInfo: z.object({ Id: z.string(), CompanyName: z.string().optional() }),
});
export type CompanyInfo = z.infer<typeof CompanyInfoAnswer>["CompanyInfo"];

/** A token that is not stored (fresh from a consent): used as it is, never refreshed. */
export function fixedToken(accessToken: string): TokenSource {
  return {
    accessToken: async () => accessToken,
    refresh: async (realmId) => {
      throw new QuickBooksError("QBO_UNAUTHORIZED", `the token does not open company ${realmId}`);
    },
  };
}

export interface QuickBooksClientOptions {
  /** `https://quickbooks.api.intuit.com`, `https://sandbox-quickbooks.api.intuit.com`, or our sandbox. */
  readonly baseUrl: string;
  readonly tokens: TokenSource;
  readonly logger: Logger;
  readonly limiter?: RealmRateLimiter;
  /** Registry for `qbo_api_requests_total`; none means no metrics. */
  readonly registry?: Registry;
  /** Per request. QuickBooks cuts requests off at 120 s (QBO.md §6). */
  readonly timeoutMs?: number;
  /** How long a throttled realm waits; QuickBooks asks for 60 s (QBO.md §6). */
  readonly throttleWaitMs?: number;
  /** Attempts per call for throttling and server errors. */
  readonly maxAttempts?: number;
  /** Rows per page of a full listing; at most QuickBooks' MAXRESULTS limit, 1,000 (QBO.md §5), the default. */
  readonly queryPageSize?: number;
}

/** 1-74 are no longer served (QBO.md §5). */
export const MINOR_VERSION = 75;

/** Ids per `Id IN (...)` query: MAXRESULTS allows 1000, URLs and bodies stay small at 100. */
export const IDS_PER_QUERY = 100;

export type QboObject = Record<string, unknown> & { Id: string };

/** QuickBooks' MAXRESULTS limit (QBO.md §5). */
const MAX_QUERY_PAGE = 1000;

/** CDC answers at most 1,000 objects across all entities (QBO.md §4). */
export const CDC_MAX_OBJECTS = 1000;

export interface ChangedSince {
  readonly changed: Map<EntityName, Map<string, QboObject>>;
  /** Deleted objects by id: QuickBooks sends `{Id, status: "Deleted", MetaData}` for each. */
  readonly deleted: Map<EntityName, Map<string, QboObject>>;
  /** False when the cap was reached: objects may be missing. */
  readonly complete: boolean;
}

/**
 * The QuickBooks Online Accounting API: every call waits for the realm's rate limit, carries
 * `minorversion`, refreshes the token once on 401, waits out throttling, retries server errors,
 * and fails with a typed {@link QuickBooksError} whose `intuitTid` is logged.
 */
export class QuickBooksClient {
  readonly #limiter: RealmRateLimiter;
  readonly #requests: Counter<"operation" | "status"> | undefined;
  readonly #tracer = trace.getTracer("qbo-webhooks-quickbooks");

  constructor(private readonly options: QuickBooksClientOptions) {
    this.#limiter = options.limiter ?? new RealmRateLimiter();
    const registry = options.registry;
    // Several clients (one per app) may share a process and its registry.
    this.#requests =
      registry &&
      ((registry.getSingleMetric("qbo_api_requests_total") as Counter<"operation" | "status"> | undefined) ??
        new Counter({
          name: "qbo_api_requests_total",
          help: "QuickBooks API requests by operation and HTTP status (or timeout/error).",
          labelNames: ["operation", "status"],
          registers: [registry],
        }));
  }

  /**
   * One entity by id.
   *
   * @throws {QuickBooksError} QBO_NOT_FOUND when it does not exist or was deleted.
   */
  async read(realmId: string, entity: EntityName, id: string, signal?: AbortSignal): Promise<QboObject> {
    const body = await this.#call(realmId, "read", `/${entity.toLowerCase()}/${encodeURIComponent(id)}`, {}, signal);
    const found = body[entity];
    if (!isObject(found))
      throw new QuickBooksError("QBO_BAD_RESPONSE", `read ${entity} ${id}: no ${entity} in the answer`);
    return found;
  }

  /**
   * The company's own record (`companyinfo`, QBO.md §5): the proof that a token opens `realmId`.
   *
   * @throws {QuickBooksError} QBO_BAD_RESPONSE when the answer is not the CompanyInfo of `realmId`.
   */
  async companyInfo(realmId: string): Promise<CompanyInfo> {
    const id = encodeURIComponent(realmId);
    const parsed = CompanyInfoAnswer.safeParse(await this.#call(realmId, "read", `/companyinfo/${id}`, {}));
    if (!parsed.success) throw new QuickBooksError("QBO_BAD_RESPONSE", "companyinfo answered without a CompanyInfo");
    if (parsed.data.CompanyInfo.Id !== realmId) {
      throw new QuickBooksError(
        "QBO_BAD_RESPONSE",
        `companyinfo answered for company ${parsed.data.CompanyInfo.Id}, not ${realmId}`,
      );
    }
    return parsed.data.CompanyInfo;
  }

  /** The rows of one query page (`select * from E ...`), as QuickBooks returns them. */
  async query(realmId: string, entity: EntityName, text: string, signal?: AbortSignal): Promise<QboObject[]> {
    const body = await this.#call(realmId, "query", "/query", { method: "POST", body: text }, signal);
    const response = body.QueryResponse;
    if (!isRecord(response)) throw new QuickBooksError("QBO_BAD_RESPONSE", "query: no QueryResponse in the answer");
    const rows = response[entity] ?? [];
    if (!Array.isArray(rows) || !rows.every(isObject)) {
      throw new QuickBooksError("QBO_BAD_RESPONSE", `query: ${entity} rows are not objects`);
    }
    return rows;
  }

  /**
   * Every entity of a type, or those changed since `since`, page by page of QuickBooks' maximum
   * (1,000, QBO.md §5), oldest change first: for a full resync and for changes CDC's cap cut off.
   */
  async *queryAll(
    realmId: string,
    entity: EntityName,
    options: { since?: Date; signal?: AbortSignal } = {},
  ): AsyncGenerator<QboObject[]> {
    const where = options.since ? ` where MetaData.LastUpdatedTime >= '${options.since.toISOString()}'` : "";
    const pageSize = Math.min(this.options.queryPageSize ?? MAX_QUERY_PAGE, MAX_QUERY_PAGE);
    for (let start = 1; ; start += pageSize) {
      const rows = await this.query(
        realmId,
        entity,
        `select * from ${entity}${where} orderby MetaData.LastUpdatedTime startposition ${start} maxresults ${pageSize}`,
        options.signal,
      );
      if (rows.length > 0) yield rows;
      if (rows.length < pageSize) return;
    }
  }

  /** Entities by id, with `Id IN (...)` queries of {@link IDS_PER_QUERY}; ids not returned do not exist. */
  async readMany(realmId: string, entity: EntityName, ids: readonly string[], signal?: AbortSignal) {
    const found = new Map<string, QboObject>();
    const unique = [...new Set(ids)];
    for (let i = 0; i < unique.length; i += IDS_PER_QUERY) {
      const chunk = unique.slice(i, i + IDS_PER_QUERY);
      const list = chunk.map((id) => `'${id.replace(/'/g, "\\'")}'`).join(",");
      const rows = await this.query(
        realmId,
        entity,
        `select * from ${entity} where Id in (${list}) maxresults ${chunk.length}`,
        signal,
      );
      for (const row of rows) found.set(row.Id, row);
    }
    return found;
  }

  /**
   * Change Data Capture (QBO.md §4): every object of the given types changed since `since`, and
   * the ids of those deleted. `complete` is false when QuickBooks' 1,000-object cap was reached.
   */
  async changedSince(
    realmId: string,
    entities: readonly EntityName[],
    since: Date,
    signal?: AbortSignal,
  ): Promise<ChangedSince> {
    const query = `?entities=${entities.join(",")}&changedSince=${encodeURIComponent(since.toISOString())}`;
    const body = await this.#call(realmId, "cdc", `/cdc${query}`, {}, signal);
    const responses = ((body.CDCResponse as { QueryResponse?: unknown[] }[] | undefined)?.[0]?.QueryResponse ??
      []) as Record<string, unknown>[];
    const changed = new Map<EntityName, Map<string, QboObject>>();
    const deleted = new Map<EntityName, Map<string, QboObject>>();
    let count = 0;
    for (const response of responses) {
      for (const entity of entities) {
        const rows = response[entity];
        if (!Array.isArray(rows)) continue;
        for (const row of rows) {
          if (!isObject(row)) continue;
          count++;
          if (row.status === "Deleted") deleted.set(entity, (deleted.get(entity) ?? new Map()).set(row.Id, row));
          else changed.set(entity, (changed.get(entity) ?? new Map()).set(row.Id, row));
        }
      }
    }
    return { changed, deleted, complete: count < CDC_MAX_OBJECTS };
  }

  async #call(
    realmId: string,
    operation: ApiOperation,
    path: string,
    init: { method?: string; body?: string },
    signal?: AbortSignal,
  ): Promise<Record<string, unknown>> {
    const url = new URL(`${this.options.baseUrl}/v3/company/${encodeURIComponent(realmId)}${path}`);
    url.searchParams.set("minorversion", String(MINOR_VERSION));
    const maxAttempts = this.options.maxAttempts ?? 3;
    return inSpan(this.#tracer, `QuickBooks ${operation}`, { kind: SpanKind.CLIENT }, async (span) => {
      span.setAttributes({ "qbo.realm_id": realmId, "qbo.operation": operation });
      let token = await this.options.tokens.accessToken(realmId);
      let refreshed = false;
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.#once(realmId, operation, url, init, token, signal);
        } catch (err) {
          if (!(err instanceof QuickBooksError)) throw err;
          this.options.logger.warn(
            { err, realmId, operation, intuitTid: err.details.intuitTid, status: err.details.status, attempt },
            "QuickBooks call failed",
          );
          if (err.code === "QBO_UNAUTHORIZED" && !refreshed) {
            refreshed = true;
            token = await this.options.tokens.refresh(realmId, token);
            continue;
          }
          if (!err.retryable || attempt >= maxAttempts) throw err;
          if (err.code === "QBO_THROTTLED") this.#limiter.holdBack(realmId, this.options.throttleWaitMs ?? 60_000);
          else await sleep(backoffMs(attempt, 500, 30_000), undefined, signal ? { signal } : {});
        }
      }
    });
  }

  async #once(
    realmId: string,
    operation: ApiOperation,
    url: URL,
    init: { method?: string; body?: string },
    token: string,
    signal?: AbortSignal,
  ): Promise<Record<string, unknown>> {
    const release = await this.#limiter.acquire(realmId, signal);
    const timeout = AbortSignal.timeout(this.options.timeoutMs ?? 30_000);
    let response: Response;
    try {
      response = await fetch(url, {
        method: init.method ?? "GET",
        ...(init.body === undefined ? {} : { body: init.body }),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        headers: {
          authorization: `Bearer ${token}`,
          accept: "application/json",
          ...(init.body === undefined ? {} : { "content-type": "application/text" }),
        },
      });
    } catch (err) {
      release();
      const timedOut = timeout.aborted && !signal?.aborted;
      this.#requests?.inc({ operation, status: timedOut ? "timeout" : "error" });
      if (timedOut)
        throw new QuickBooksError("QBO_TIMEOUT", `${operation}: no answer within the timeout`, {}, { cause: err });
      throw err;
    }
    try {
      this.#requests?.inc({ operation, status: String(response.status) });
      const text = await response.text();
      const intuitTid = response.headers.get("intuit_tid") ?? undefined;
      if (!response.ok) throw readFault(response.status, response.headers.get("content-type") ?? "", text, intuitTid);
      try {
        const body: unknown = JSON.parse(text);
        if (isRecord(body)) return body;
      } catch (err) {
        throw new QuickBooksError(
          "QBO_BAD_RESPONSE",
          `${operation}: answer is not JSON`,
          { status: response.status, ...(intuitTid ? { intuitTid } : {}) },
          { cause: err },
        );
      }
      throw new QuickBooksError("QBO_BAD_RESPONSE", `${operation}: answer is not an object`);
    } finally {
      release();
    }
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isObject(value: unknown): value is QboObject {
  return isRecord(value) && typeof value.Id === "string";
}
