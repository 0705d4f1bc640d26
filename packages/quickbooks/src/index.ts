export { connectQuickBooks } from "./connect-quickbooks.js";
export { KvTokenSource, StoredTokens } from "./kv-token-source.js";
export type { IssuedTokens, OAuthEndpoint } from "./oauth.js";
export {
  ACCOUNTING_SCOPE,
  authorizeUrl,
  INTUIT_AUTHORIZE_URL,
  INTUIT_TOKEN_URL,
  issuedTokensOf,
  requestTokens,
  revokeToken,
} from "./oauth.js";
export { type CompanyInfo, QboObject } from "./qbo-answers.js";
export type { ApiOperation, ChangedSince, QuickBooksClientOptions, TokenSource } from "./quickbooks-client.js";
export {
  CDC_MAX_OBJECTS,
  fixedToken,
  IDS_PER_QUERY,
  MINOR_VERSION,
  QuickBooksClient,
} from "./quickbooks-client.js";
export type { QuickBooksSettings } from "./quickbooks-env.js";
export { checkQuickBooksEnv, quickbooksEndpoints, quickbooksEnvFields, quickbooksSettings } from "./quickbooks-env.js";
export type { QuickBooksErrorCode } from "./quickbooks-error.js";
export { QuickBooksError } from "./quickbooks-error.js";
export { readFault } from "./read-fault.js";
export type { RateLimits } from "./realm-rate-limiter.js";
export { DEFAULT_RATE_LIMITS, RealmRateLimiter } from "./realm-rate-limiter.js";
export { SharedRealmBudget } from "./shared-realm-budget.js";
export { TokenCipher } from "./token-cipher.js";
