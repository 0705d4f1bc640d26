import { z } from "zod";
import { MINOR_VERSION } from "./quickbooks-client.js";
import { QuickBooksError } from "./quickbooks-error.js";
import { readFault } from "./read-fault.js";

const CompanyInfoAnswer = z.object({
  CompanyInfo: z.object({ Id: z.string(), CompanyName: z.string().optional() }),
});
export type CompanyInfo = z.infer<typeof CompanyInfoAnswer>["CompanyInfo"];

/**
 * Reads `companyinfo` of `realmId` with an access token not stored yet (QBO.md §5): the proof that
 * tokens from a consent belong to the company the redirect named.
 * @throws {QuickBooksError} the API's codes (QBO_UNAUTHORIZED when the tokens are not that company's),
 *   QBO_BAD_RESPONSE when the answer is not a CompanyInfo of `realmId`.
 */
export async function readCompanyInfo(apiBaseUrl: string, realmId: string, accessToken: string): Promise<CompanyInfo> {
  const id = encodeURIComponent(realmId);
  const url = `${apiBaseUrl}/v3/company/${id}/companyinfo/${id}?minorversion=${MINOR_VERSION}`;
  const response = await fetch(url, {
    headers: { authorization: `Bearer ${accessToken}`, accept: "application/json" },
    signal: AbortSignal.timeout(30_000),
  }).catch((err: unknown) => {
    throw new QuickBooksError("QBO_TIMEOUT", `companyinfo unreachable: ${String(err)}`, {}, { cause: err });
  });
  const text = await response.text();
  if (!response.ok) {
    const contentType = response.headers.get("content-type") ?? "";
    throw readFault(response.status, contentType, text, response.headers.get("intuit_tid") ?? undefined);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new QuickBooksError("QBO_BAD_RESPONSE", "companyinfo answered something other than JSON");
  }
  const parsed = CompanyInfoAnswer.safeParse(body);
  if (!parsed.success) throw new QuickBooksError("QBO_BAD_RESPONSE", "companyinfo answered without a CompanyInfo");
  if (parsed.data.CompanyInfo.Id !== realmId) {
    throw new QuickBooksError(
      "QBO_BAD_RESPONSE",
      `companyinfo answered for company ${parsed.data.CompanyInfo.Id}, not ${realmId}`,
    );
  }
  return parsed.data.CompanyInfo;
}
