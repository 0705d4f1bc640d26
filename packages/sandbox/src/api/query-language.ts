import { type EntityName, entityNameFromAnyCase, parseQboTimestamp } from "@qbo-webhooks/contracts";

/**
 * The part of QuickBooks' query language a webhook processor needs (QBO.md §5):
 * `SELECT *|count(*) FROM E [WHERE a op v AND ..] [ORDERBY f [ASC|DESC]] [STARTPOSITION n] [MAXRESULTS n]`,
 * operators `= < > <= >= IN LIKE`, no OR; Id takes only `=` and `IN`; MAXRESULTS at most 1000.
 */
export interface Query {
  readonly count: boolean;
  readonly entity: EntityName;
  readonly where: readonly Condition[];
  readonly orderBy?: { readonly field: string; readonly descending: boolean };
  readonly startPosition: number;
  readonly maxResults: number;
}

export interface Condition {
  readonly field: string;
  readonly op: "=" | "<" | ">" | "<=" | ">=" | "IN" | "LIKE";
  readonly values: readonly string[];
}

export class QueryError extends Error {
  override name = "QueryError";
}

const QUERY =
  /^\s*select\s+(\*|count\(\*\))\s+from\s+(\w+)(?:\s+where\s+(.+?))?(?:\s+orderby\s+([\w.]+)(?:\s+(asc|desc))?)?(?:\s+startposition\s+(\d+))?(?:\s+maxresults\s+(\d+))?\s*$/is;
const CONDITION = /^\s*([\w.]+)\s*(<=|>=|=|<|>|\bin\b|\blike\b)\s*(.+?)\s*$/is;

/** @throws {QueryError} with QuickBooks' kind of message when the text is outside the grammar. */
export function parseQuery(text: string): Query {
  const match = QUERY.exec(text);
  if (!match) throw new QueryError(`QueryParserError: Encountered an unexpected token in "${text}"`);
  const [, projection = "", entityWord = "", where, orderField, direction, start, max] = match;
  const entity = entityNameFromAnyCase(entityWord);
  if (!entity) throw new QueryError(`QueryValidationError: Invalid table name ${entityWord}`);
  const maxResults = max === undefined ? 100 : Number(max);
  if (maxResults > 1000) throw new QueryError("QueryValidationError: MAXRESULTS must be at most 1000");
  const startPosition = start === undefined ? 1 : Number(start);
  if (startPosition < 1) throw new QueryError("QueryValidationError: STARTPOSITION starts at 1");
  return {
    count: projection !== "*",
    entity,
    where: where ? splitConditions(where).map(parseCondition) : [],
    ...(orderField ? { orderBy: { field: orderField, descending: direction?.toLowerCase() === "desc" } } : {}),
    startPosition,
    maxResults,
  };
}

function splitConditions(where: string): string[] {
  if (/\bor\b/i.test(where.replace(/'[^']*'/g, "''"))) throw new QueryError("QueryParserError: OR is not supported");
  return where.split(/\s+and\s+(?=(?:[^']*'[^']*')*[^']*$)/i);
}

function parseCondition(text: string): Condition {
  const match = CONDITION.exec(text);
  if (!match) throw new QueryError(`QueryParserError: cannot read condition "${text}"`);
  const [, field = "", rawOp = "", rawValue = ""] = match;
  const op = rawOp.toUpperCase() as Condition["op"];
  if (field.toLowerCase() === "id" && op !== "=" && op !== "IN") {
    throw new QueryError("QueryValidationError: Id supports only = and IN");
  }
  const values =
    op === "IN"
      ? [...rawValue.replace(/^\(|\)$/g, "").matchAll(/'([^']*)'/g)].map((m) => m[1] ?? "")
      : [rawValue.replace(/^'|'$/g, "")];
  if (values.length === 0) throw new QueryError(`QueryParserError: no values in "${text}"`);
  return { field, op, values };
}

/** Whether an entity satisfies every condition. */
export function matches(entity: Record<string, unknown>, where: readonly Condition[]): boolean {
  return where.every((condition) => {
    const actual = fieldValue(entity, condition.field);
    if (actual === undefined) return false;
    const compare = (expected: string) => compareValues(condition.field, actual, expected);
    switch (condition.op) {
      case "=":
        return compare(condition.values[0] ?? "") === 0;
      case "IN":
        return condition.values.some((value) => compare(value) === 0);
      case "<":
        return compare(condition.values[0] ?? "") < 0;
      case ">":
        return compare(condition.values[0] ?? "") > 0;
      case "<=":
        return compare(condition.values[0] ?? "") <= 0;
      case ">=":
        return compare(condition.values[0] ?? "") >= 0;
      case "LIKE": {
        const pattern = (condition.values[0] ?? "").replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/%/g, ".*");
        return new RegExp(`^${pattern}$`, "i").test(String(actual));
      }
      default:
        return false;
    }
  });
}

export function fieldValue(entity: Record<string, unknown>, path: string): unknown {
  let value: unknown = entity;
  for (const key of path.split(".")) {
    if (typeof value !== "object" || value === null) return undefined;
    const record = value as Record<string, unknown>;
    const actualKey = Object.keys(record).find((k) => k.toLowerCase() === key.toLowerCase());
    value = actualKey === undefined ? undefined : record[actualKey];
  }
  return value;
}

export function compareValues(field: string, actual: unknown, expected: string): number {
  if (/time$/i.test(field)) return Math.sign(parseQboTimestamp(String(actual)) - parseQboTimestamp(expected));
  if (field.toLowerCase() === "id" || typeof actual === "number") {
    const a = Number(actual);
    const b = Number(expected);
    if (!Number.isNaN(a) && !Number.isNaN(b)) return Math.sign(a - b);
  }
  return String(actual).localeCompare(expected);
}
