import type { EntityName } from "@qbo-webhooks/contracts";
import { z } from "zod";

/**
 * A schema built per call's entity types, once for each: zod compiles a schema's parser the first
 * time it parses, which a schema built per call paid again on every call (2% of the processor's CPU
 * in a profile). The keys are one per entity type, or per set of types asked of CDC together;
 * past `MAX_BUILT` the memory starts again.
 */
const MAX_BUILT = 1000;
function builtOnce<A, T>(keyOf: (arg: A) => string, build: (arg: A) => T): (arg: A) => T {
  const made = new Map<string, T>();
  return (arg) => {
    const key = keyOf(arg);
    const known = made.get(key);
    if (known !== undefined) return known;
    const schema = build(arg);
    if (made.size >= MAX_BUILT) made.clear();
    made.set(key, schema);
    return schema;
  };
}

import { QuickBooksError } from "./quickbooks-error.js";

/**
 * An object as QuickBooks answers it. Only what we rely on is checked (its id, and the version an
 * app orders changes by); every other field is kept as it came.
 */
export const QboObject = z.looseObject({
  Id: z.string().min(1),
  SyncToken: z.string().optional(),
  MetaData: z.looseObject({ LastUpdatedTime: z.string().optional() }).optional(),
});
export type QboObject = z.infer<typeof QboObject>;

/** `GET /{entity}/{id}`: `{"Customer": {...}, "time": ...}` (QBO.md §5). */
export function readAnswer<E extends EntityName>(entity: E) {
  return z.looseRecord(z.enum([entity]), QboObject);
}

/** `/query`: `{"QueryResponse": {"Customer": [...], ...}}`; a page with no rows has no entity key (QBO.md §5). */
export const queryAnswer = builtOnce(
  (entity: EntityName) => entity,
  (entity) => z.looseObject({ QueryResponse: z.looseObject({ [entity]: z.array(QboObject).optional() }) }),
);

/** A CDC row: a changed object in full, or `{Id, status: "Deleted", MetaData}` for a deleted one (QBO.md §4). */
const CdcRow = QboObject.extend({ status: z.string().optional() });

/** `/cdc`: one `CDCResponse` whose `QueryResponse` holds one entry per entity asked for (QBO.md §4). */
export const cdcAnswer = builtOnce(
  (entities: readonly EntityName[]) => [...entities].sort().join(","),
  (entities) => {
    const entry = z.looseObject(Object.fromEntries(entities.map((entity) => [entity, z.array(CdcRow).optional()])));
    return z.looseObject({ CDCResponse: z.array(z.looseObject({ QueryResponse: z.array(entry) })).min(1) });
  },
);

export const CompanyInfoAnswer = z.looseObject({
  CompanyInfo: z.looseObject({ Id: z.string(), CompanyName: z.string().optional() }),
});
export type CompanyInfo = z.infer<typeof CompanyInfoAnswer>["CompanyInfo"];

/** A JSON fault's errors, from upper-case `Fault.Error` or the lower-case `fault.error` variant (QBO.md §8). */
const FaultEntry = z.looseObject({
  Message: z.string().optional(),
  message: z.string().optional(),
  Detail: z.string().optional(),
  detail: z.string().optional(),
  code: z.union([z.string(), z.number()]).optional(),
});
export const FaultAnswer = z.union([
  z.looseObject({ Fault: z.looseObject({ Error: z.array(FaultEntry).min(1) }) }).transform((a) => a.Fault.Error),
  z.looseObject({ fault: z.looseObject({ error: z.array(FaultEntry).min(1) }) }).transform((a) => a.fault.error),
]);

/** A successful answer's JSON, with what was asked and QuickBooks' id for the request. */
export interface Answer {
  readonly body: unknown;
  readonly what: string;
  readonly details: QuickBooksError["details"];
}

/**
 * A successful answer's text as JSON.
 * @throws {QuickBooksError} QBO_BAD_RESPONSE when it is not JSON: an HTML page (a proxy's or a
 *   login page) or a body cut short.
 */
export function answerOf(text: string, contentType: string, what: string, details: Answer["details"]): Answer {
  try {
    return { body: JSON.parse(text), what, details };
  } catch {
    // No cause: JSON.parse's message quotes the text, which may hold tokens or a company's books.
    const kind = /html/i.test(contentType) ? "an HTML page" : "not JSON (or cut short)";
    throw new QuickBooksError("QBO_BAD_RESPONSE", `${what}: the answer is ${kind}`, details);
  }
}

/**
 * An answer read with `schema`, or QBO_BAD_RESPONSE naming what did not fit: a malformed answer
 * is a typed error the caller retries or gives up on, never a crash or a silently wrong copy.
 */
export function parseAnswer<S extends z.ZodType>(schema: S, { body, what, details }: Answer): z.infer<S> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  // Issue paths and expectations only: never the values, which are a company's books or tokens.
  const issue = parsed.error.issues[0];
  const where = issue?.path.length ? issue.path.join(".") : "the top";
  throw new QuickBooksError(
    "QBO_BAD_RESPONSE",
    `${what}: unexpected answer at ${where}: ${issue?.message ?? "invalid"}`,
    details,
  );
}
