export type { ApiOperation, QboObject, QuickBooksClientOptions, TokenSource } from "./quickbooks-client.js";
export { IDS_PER_QUERY, MINOR_VERSION, QuickBooksClient } from "./quickbooks-client.js";
export type { QuickBooksErrorCode } from "./quickbooks-error.js";
export { QuickBooksError } from "./quickbooks-error.js";
export { readFault } from "./read-fault.js";
export type { RateLimits } from "./realm-rate-limiter.js";
export { DEFAULT_RATE_LIMITS, RealmRateLimiter } from "./realm-rate-limiter.js";
