import { jsonOrUndefined } from "@qbo-webhooks/contracts";
import { FaultAnswer } from "./qbo-answers.js";
import { QuickBooksError } from "./quickbooks-error.js";

interface FaultError {
  message: string;
  detail: string;
  code: string;
}

/**
 * Reads a failed answer in any of the shapes QuickBooks uses (QBO.md §6, §8): JSON `Fault` or
 * lower-case `fault`, XML faults (throttling comes as XML even when JSON was asked for), and nginx
 * HTML pages for 502/503.
 */
export function readFault(
  status: number,
  contentType: string,
  body: string,
  intuitTid: string | undefined,
): QuickBooksError {
  const details = { status, ...(intuitTid ? { intuitTid } : {}) };
  const error = jsonFault(body) ?? xmlFault(body);
  const text = error ? `${error.message} ${error.detail}`.trim() : body.slice(0, 200);
  const withCode = { ...details, ...(error?.code ? { faultCode: error.code } : {}) };
  if (status === 429 || /ThrottleExceeded/i.test(text)) {
    return new QuickBooksError("QBO_THROTTLED", `throttled (${status}): ${text}`, withCode);
  }
  if (status === 401) return new QuickBooksError("QBO_UNAUTHORIZED", `unauthorized: ${text}`, withCode);
  if (status === 403) return new QuickBooksError("QBO_FORBIDDEN", `forbidden: ${text}`, withCode);
  if (status >= 500) {
    const what = /html/i.test(contentType) ? `HTML error page` : text;
    return new QuickBooksError("QBO_SERVER", `QuickBooks ${status}: ${what}`, withCode);
  }
  if (error?.code === "610") return new QuickBooksError("QBO_NOT_FOUND", `not found: ${text}`, withCode);
  if (status === 400) return new QuickBooksError("QBO_VALIDATION", `rejected: ${text}`, withCode);
  return new QuickBooksError("QBO_BAD_RESPONSE", `unexpected ${status}: ${text}`, withCode);
}

function jsonFault(body: string): FaultError | undefined {
  const parsed = FaultAnswer.safeParse(jsonOrUndefined(body)); // not JSON: XML or HTML, read by xmlFault
  if (!parsed.success) return undefined;
  const [first] = parsed.data;
  return {
    message: first?.Message ?? first?.message ?? "",
    detail: first?.Detail ?? first?.detail ?? "",
    code: String(first?.code ?? ""),
  };
}

function xmlFault(body: string): FaultError | undefined {
  const code = /<Error[^>]*code="(\d+)"/.exec(body)?.[1];
  const message = /<Message>([^<]*)<\/Message>/.exec(body)?.[1];
  if (!code && !message) return undefined;
  return { code: code ?? "", message: message ?? "", detail: /<Detail>([^<]*)<\/Detail>/.exec(body)?.[1] ?? "" };
}
