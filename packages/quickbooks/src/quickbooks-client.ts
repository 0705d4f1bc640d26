import { setTimeout as sleep } from "node:timers/promises";
import { SpanKind, trace } from "@opentelemetry/api";
import type { EntityName } from "@qbo-webhooks/contracts";
import { backoffMs } from "@qbo-webhooks/messaging";
import { inSpan, type Logger } from "@qbo-webhooks/observability";
import { Counter, type Registry } from "prom-client";
import type { z } from "zod";
import {
  type Answer,
  answerOf,
  type CompanyInfo,
  CompanyInfoAnswer,
  cdcAnswer,
  parseAnswer,
  type QboObject,
  queryAnswer,
  readAnswer,
} from "./qbo-answers.js";
import { fetchFailed, QuickBooksError } from "./quickbooks-error.js";
import { readFault } from "./read-fault.js";
import { RealmRateLimiter } from "./realm-rate-limiter.js";

/** Where an app's access tokens come from; `refresh` is called once per call after a 401. */
export interface TokenSource {
  accessToken(realmId: string): Promise<string>;
  /** A fresh access token, replacing `rejected`. */
  refresh(realmId: string, rejected: string): Promise<string>;
}

export type ApiOperation = "read" | "query" | "cdc";

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
  async read<E extends EntityName>(realmId: string, entity: E, id: string, signal?: AbortSignal): Promise<QboObject> {
    const path = `/${entity.toLowerCase()}/${encodeURIComponent(id)}`;
    return (await this.#call(realmId, "read", path, {}, readAnswer(entity), signal))[entity];
  }

  /**
   * The company's own record (`companyinfo`, QBO.md §5): the proof that a token opens `realmId`.
   *
   * @throws {QuickBooksError} QBO_BAD_RESPONSE when the answer is not the CompanyInfo of `realmId`.
   */
  async companyInfo(realmId: string): Promise<CompanyInfo> {
    const id = encodeURIComponent(realmId);
    const { CompanyInfo: info } = await this.#call(realmId, "read", `/companyinfo/${id}`, {}, CompanyInfoAnswer);
    if (info.Id !== realmId) {
      throw new QuickBooksError("QBO_BAD_RESPONSE", `companyinfo answered for company ${info.Id}, not ${realmId}`);
    }
    return info;
  }

  /** The rows of one query page (`select * from E ...`), as QuickBooks returns them. */
  async query(realmId: string, entity: EntityName, text: string, signal?: AbortSignal): Promise<QboObject[]> {
    const init = { method: "POST", body: text };
    return (
      (await this.#call(realmId, "query", "/query", init, queryAnswer(entity), signal)).QueryResponse[entity] ?? []
    );
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
    const body = await this.#call(realmId, "cdc", `/cdc${query}`, {}, cdcAnswer(entities), signal);
    const responses = body.CDCResponse.flatMap((r) => r.QueryResponse);
    const changed = new Map<EntityName, Map<string, QboObject>>();
    const deleted = new Map<EntityName, Map<string, QboObject>>();
    let count = 0;
    for (const response of responses) {
      for (const entity of entities) {
        for (const row of response[entity] ?? []) {
          count++;
          if (row.status === "Deleted") deleted.set(entity, (deleted.get(entity) ?? new Map()).set(row.Id, row));
          else changed.set(entity, (changed.get(entity) ?? new Map()).set(row.Id, row));
        }
      }
    }
    return { changed, deleted, complete: count < CDC_MAX_OBJECTS };
  }

  async #call<S extends z.ZodType>(
    realmId: string,
    operation: ApiOperation,
    path: string,
    init: { method?: string; body?: string },
    answer: S,
    signal?: AbortSignal,
  ): Promise<z.infer<S>> {
    const url = new URL(`${this.options.baseUrl}/v3/company/${encodeURIComponent(realmId)}${path}`);
    url.searchParams.set("minorversion", String(MINOR_VERSION));
    const maxAttempts = this.options.maxAttempts ?? 3;
    return inSpan(this.#tracer, `QuickBooks ${operation}`, { kind: SpanKind.CLIENT }, async (span) => {
      span.setAttributes({ "qbo.realm_id": realmId, "qbo.operation": operation });
      let [token, release] = await this.#firstTurn(realmId, signal);
      let refreshed = false;
      for (let attempt = 1; ; attempt++) {
        try {
          const turn = release ?? (await this.#limiter.acquire(realmId, signal));
          release = undefined;
          return parseAnswer(answer, await this.#once(operation, url, init, token, turn, signal));
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

  /**
   * The realm's access token and its first turn in the call budget, asked for together: two
   * round trips to NATS that need nothing from each other. A turn taken for a call that then has
   * no token is given back unused.
   */
  async #firstTurn(realmId: string, signal?: AbortSignal): Promise<[string, (() => void) | undefined]> {
    const [token, turn] = await Promise.allSettled([
      this.options.tokens.accessToken(realmId),
      this.#limiter.acquire(realmId, signal),
    ]);
    if (token.status === "rejected") {
      if (turn.status === "fulfilled") turn.value();
      throw token.reason;
    }
    if (turn.status === "rejected") throw turn.reason;
    return [token.value, turn.value];
  }

  /** One request in the turn `release` gives back: its body as JSON with where it came from, or a typed error. */
  async #once(
    operation: ApiOperation,
    url: URL,
    init: { method?: string; body?: string },
    token: string,
    release: () => void,
    signal?: AbortSignal,
  ): Promise<Answer> {
    const timeout = AbortSignal.timeout(this.options.timeoutMs ?? 30_000);
    try {
      let response: Response;
      let text: string;
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
        text = await response.text();
      } catch (err) {
        if (signal?.aborted) throw err;
        const timedOut = timeout.aborted;
        this.#requests?.inc({ operation, status: timedOut ? "timeout" : "error" });
        throw fetchFailed(operation, timedOut, err);
      }
      this.#requests?.inc({ operation, status: String(response.status) });
      const intuitTid = response.headers.get("intuit_tid") ?? undefined;
      const contentType = response.headers.get("content-type") ?? "";
      if (!response.ok) throw readFault(response.status, contentType, text, intuitTid);
      return answerOf(text, contentType, operation, { status: response.status, ...(intuitTid ? { intuitTid } : {}) });
    } finally {
      release();
    }
  }
}
