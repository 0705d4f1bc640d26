import { createHmac, timingSafeEqual } from "node:crypto";

const SHA256_BYTES = 32;

/**
 * Whether `signature` (the `intuit-signature` header) is base64 HMAC-SHA256 of the exact raw body
 * under any of the verifier tokens (QBO.md §2). Several tokens allow rotation without downtime.
 * Every token is tried, and compared in constant time, so timing reveals neither the match nor which token.
 */
export function isSignedByIntuit(body: Uint8Array, signature: string | undefined, tokens: readonly string[]): boolean {
  if (!signature) return false;
  const given = Buffer.from(signature.trim(), "base64");
  if (given.length !== SHA256_BYTES) return false;
  let matched = false;
  for (const token of tokens) {
    const expected = createHmac("sha256", token).update(body).digest();
    matched = timingSafeEqual(expected, given) || matched;
  }
  return matched;
}

/** The `intuit-signature` QuickBooks sends with `body` under `token`: base64 HMAC-SHA256 of the raw bytes. */
export function signIntuitPayload(body: Uint8Array | string, token: string): string {
  return createHmac("sha256", token).update(body).digest("base64");
}
