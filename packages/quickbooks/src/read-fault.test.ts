import { describe, expect, it } from "vitest";
import { readFault } from "./read-fault.js";

// The bodies QBO.md §6 and §8 record, verbatim where it gives them.
describe("read-fault", () => {
  it.each([
    [
      "upper-case validation fault (QBO.md §8)",
      400,
      "application/json",
      '{"Fault":{"Error":[{"Message":"Duplicate Name Exists Error","Detail":"x","code":"6240","element":""}],"type":"ValidationFault"},"time":"2024-06-23T04:29:11.688-07:00"}',
      "QBO_VALIDATION",
      "6240",
    ],
    [
      "lower-case fault variant (QBO.md §8)",
      400,
      "application/json",
      '{"fault":{"error":[{"message":"Object Not Found","detail":"gone","code":"610"}],"type":"ValidationFault"},"time":1730024394085}',
      "QBO_NOT_FOUND",
      "610",
    ],
    [
      "expired token (QBO.md §8)",
      401,
      "application/json",
      '{"fault":{"error":[{"message":"message=AuthenticationFailed; errorCode=003200; statusCode=401","detail":"Token expired: ..","code":"3200"}],"type":"AUTHENTICATION"},"time":1730024394085}',
      "QBO_UNAUTHORIZED",
      "3200",
    ],
    [
      "throttling as XML with 429 (QBO.md §6)",
      429,
      "application/xml",
      '<Fault type="SERVICE"><Error code="3001"><Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message><Detail>The request limit was reached.  Try again later</Detail></Error></Fault>',
      "QBO_THROTTLED",
      "3001",
    ],
    [
      "throttling as XML with 403, as the 2016 sandbox did (QBO.md §6)",
      403,
      "application/xml",
      '<Fault type="SERVICE"><Error code="3001"><Message>message=ThrottleExceeded; errorCode=003001; statusCode=403</Message></Error></Fault>',
      "QBO_THROTTLED",
      "3001",
    ],
    [
      "application authorization failure (QBO.md §8)",
      403,
      "application/json",
      '{"Fault":{"Error":[{"Message":"message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403","code":"3100"}],"type":"SECURITY"}}',
      "QBO_FORBIDDEN",
      "3100",
    ],
    [
      "nginx HTML 502 (QBO.md §8)",
      502,
      "text/html",
      "<html><head><title>502 Bad Gateway</title></head></html>",
      "QBO_SERVER",
      undefined,
    ],
    [
      "internal server error (QBO.md §8)",
      500,
      "application/json",
      '{"Fault":{"Error":[{"Message":"message=InternalServerError; errorCode=003100; statusCode=500","code":"3100"}],"type":"SERVICE"}}',
      "QBO_SERVER",
      "3100",
    ],
  ])("read-fault - reads %s", (_name, status, contentType, body, code, faultCode) => {
    const error = readFault(status, contentType, body, "tid-1");
    expect(error.code).toBe(code);
    expect(error.details).toEqual({ status, intuitTid: "tid-1", ...(faultCode ? { faultCode } : {}) });
  });

  it("read-fault - only throttling, server errors and timeouts are worth retrying", () => {
    expect(readFault(429, "", "", undefined).retryable).toBe(true);
    expect(readFault(503, "text/html", "<html/>", undefined).retryable).toBe(true);
    expect(readFault(400, "", '{"Fault":{"Error":[{"code":"4000"}]}}', undefined).retryable).toBe(false);
  });
});
