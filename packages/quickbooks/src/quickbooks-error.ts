export type QuickBooksErrorCode =
  /** 429, or 403 with ThrottleExceeded: wait before calling this realm again (QBO.md §6). */
  | "QBO_THROTTLED"
  /** 401: the access token is expired, revoked or unknown (QBO.md §8); from the token endpoint, `invalid_grant`. */
  | "QBO_UNAUTHORIZED"
  /**
   * The token endpoint refused our client id or secret (`invalid_client`): a configuration error
   * of ours, not the company's; its tokens stay as they are.
   */
  | "QBO_CLIENT_REFUSED"
  /** 403 ApplicationAuthorizationFailed: the app may not do this (QBO.md §8). */
  | "QBO_FORBIDDEN"
  /** 400 with code 610: the object does not exist or was deleted (QBO.md §8). */
  | "QBO_NOT_FOUND"
  /** Any other 400 fault: the request is wrong; retrying will not help. */
  | "QBO_VALIDATION"
  /** 5xx, including nginx HTML pages: retry later (QBO.md §8). */
  | "QBO_SERVER"
  /** No answer within the client's timeout. */
  | "QBO_TIMEOUT"
  /** The connection failed, or was cut before the answer was whole. */
  | "QBO_NETWORK"
  /** An answer we cannot read as QuickBooks'. */
  | "QBO_BAD_RESPONSE";

/** A failed QuickBooks API call; `intuitTid` identifies it to Intuit support (QBO.md §8). */
export class QuickBooksError extends Error {
  override name = "QuickBooksError";
  constructor(
    readonly code: QuickBooksErrorCode,
    message: string,
    readonly details: { status?: number; faultCode?: string; intuitTid?: string } = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  /** Whether the same call may succeed later. */
  get retryable(): boolean {
    return (
      this.code === "QBO_THROTTLED" ||
      this.code === "QBO_SERVER" ||
      this.code === "QBO_TIMEOUT" ||
      this.code === "QBO_NETWORK"
    );
  }
}

/** A request that got no whole answer: the timeout ran out (`QBO_TIMEOUT`) or the connection failed (`QBO_NETWORK`). */
export function fetchFailed(operation: string, timedOut: boolean, cause: unknown): QuickBooksError {
  return timedOut
    ? new QuickBooksError("QBO_TIMEOUT", `${operation}: no answer within the timeout`, {}, { cause })
    : new QuickBooksError("QBO_NETWORK", `${operation}: the connection failed`, {}, { cause });
}
