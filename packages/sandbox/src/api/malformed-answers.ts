import type { NextFunction, Request, Response } from "express";
import { z } from "zod";
import { type FaultDraws, frequency, hasOneFrequency, ONE_FREQUENCY } from "../fault-draws.js";
import { endpointOf } from "./qbo-api-router.js";

/** The endpoints whose successful answers can be spoiled. */
export const SpoilableEndpoint = z.enum(["read", "query", "cdc", "token"]);
export type SpoilableEndpoint = z.infer<typeof SpoilableEndpoint>;

/**
 * A 200 answer that is not what QuickBooks' documented shape promises: `truncated` (the JSON cut
 * off half way, as a dropped connection leaves it), `wrongTypes` (every string a number and every
 * number a string), or `html` (a proxy's or login page). On the token endpoint the grant has been
 * used by then, as when a real answer is lost on its way back.
 */
export const MalformedAnswer = z
  .object({
    kind: z.enum(["truncated", "wrongTypes", "html"]),
    /** All of them when absent. */
    endpoint: SpoilableEndpoint.optional(),
    ...frequency,
  })
  .refine(hasOneFrequency, ONE_FREQUENCY);
export type MalformedAnswer = z.infer<typeof MalformedAnswer>;

const LOGIN_PAGE =
  "<!DOCTYPE html><html><head><title>Sign in</title></head><body><h1>Sign in to Intuit</h1></body></html>";

/** Middleware: spoils the JSON answer of a request an injected {@link MalformedAnswer} hits. */
export function malformedAnswers(host: { draws: () => FaultDraws<MalformedAnswer>; spoiled: () => void }) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const endpoint = spoilableEndpoint(req.path);
    const hit = endpoint && host.draws().draw((rule) => rule.endpoint === undefined || rule.endpoint === endpoint);
    if (hit) {
      const json = res.json.bind(res);
      res.json = (body: unknown) => {
        if (res.statusCode !== 200) return json(body);
        host.spoiled();
        if (hit.kind === "html") return res.type("text/html").send(LOGIN_PAGE);
        if (hit.kind === "wrongTypes") return json(swapTypes(body));
        const text = JSON.stringify(body);
        return res.type("application/json").send(text.slice(0, Math.floor(text.length / 2)));
      };
    }
    next();
  };
}

function spoilableEndpoint(path: string): SpoilableEndpoint | undefined {
  if (path === "/oauth2/v1/tokens/bearer") return "token";
  return path.startsWith("/v3/company/") ? endpointOf(path) : undefined;
}

function swapTypes(value: unknown): unknown {
  if (typeof value === "string") return value.length;
  if (typeof value === "number") return String(value);
  if (Array.isArray(value)) return value.map(swapTypes);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, swapTypes(inner)]));
  }
  return value;
}
