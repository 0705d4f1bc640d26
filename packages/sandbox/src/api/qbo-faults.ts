import type { Response } from "express";

/**
 * Error replies in the shapes QuickBooks really sends (QBO.md §6, §8): JSON faults in upper- or
 * lower-case variants, throttling as XML, and nginx HTML pages for 502/503.
 */
export interface FaultStyle {
  /** The `{"fault":{"error":[..]}}` variant with an epoch-ms `time` (QBO.md §8). */
  readonly lowerCase: boolean;
  /** QuickBooks' time of the answer: the sandbox's clock, not the wall clock. */
  readonly now: number;
}

export function validationFault(res: Response, style: FaultStyle, code: string, message: string, detail = message) {
  sendFault(res, 400, style, "ValidationFault", { message, detail, code });
}

/** QuickBooks answers a read of a missing or deleted object with 400 and code 610 (QBO.md §8). */
export function objectNotFound(res: Response, style: FaultStyle, what: string) {
  validationFault(
    res,
    style,
    "610",
    "Object Not Found",
    `Object Not Found : Something you're trying to use has been made inactive or deleted: ${what}`,
  );
}

export function authenticationFault(res: Response, now: number, detail: string) {
  // QuickBooks sends this one lower-case, with an epoch-ms time (QBO.md §8).
  res.status(401).json({
    fault: {
      error: [{ message: "message=AuthenticationFailed; errorCode=003200; statusCode=401", detail, code: "3200" }],
      type: "AUTHENTICATION",
    },
    time: now,
  });
}

export function serverFault(res: Response, style: FaultStyle) {
  sendFault(res, 500, style, "SERVICE", {
    message: "message=InternalServerError; errorCode=003100; statusCode=500",
    detail: "Internal Server Error",
    code: "3100",
  });
}

/** Throttling comes as XML even when JSON was asked for, with 429 (or 403 in the old sandbox) (QBO.md §6). */
export function throttled(res: Response, now: number, status: 429 | 403) {
  res
    .status(status)
    .type("application/xml")
    .send(
      `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="${new Date(now).toISOString()}"><Fault type="SERVICE"><Error code="3001"><Message>message=ThrottleExceeded; errorCode=003001; statusCode=${status}</Message><Detail>The request limit was reached.  Try again later</Detail></Error></Fault></IntuitResponse>`,
    );
}

/** 502 and 503 come from QuickBooks' nginx as HTML pages, not JSON (QBO.md §8). */
export function gatewayPage(res: Response, status: 502 | 503) {
  const title = status === 502 ? "502 Bad Gateway" : "503 Service Temporarily Unavailable";
  res
    .status(status)
    .type("text/html")
    .send(
      `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`,
    );
}

function sendFault(
  res: Response,
  status: number,
  style: FaultStyle,
  type: string,
  error: { message: string; detail: string; code: string },
) {
  if (style.lowerCase) {
    res.status(status).json({ fault: { error: [{ ...error, element: "" }], type }, time: style.now });
    return;
  }
  res.status(status).json({
    Fault: { Error: [{ Message: error.message, Detail: error.detail, code: error.code, element: "" }], type },
    time: new Date(style.now).toISOString(),
  });
}
