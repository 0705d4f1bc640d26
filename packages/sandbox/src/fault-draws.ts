import { z } from "zod";
import type { Random } from "./company/entity-fields.js";

/** How often an injected fault hits: that share of requests (`percent`), or the next `count` ones. */
export const frequency = {
  percent: z.number().min(0).max(100).optional(),
  count: z.number().int().min(1).optional(),
};

/** The refinement every fault with a {@link frequency} takes: exactly one of the two. */
export function hasOneFrequency(fault: { percent?: number | undefined; count?: number | undefined }): boolean {
  return (fault.percent === undefined) !== (fault.count === undefined);
}
export const ONE_FREQUENCY = { message: "give exactly one of percent or count" };

/** Draws which injected fault, if any, hits a request; counted faults are used up as they hit. */
export class FaultDraws<R extends { readonly percent?: number | undefined; readonly count?: number | undefined }> {
  readonly #remaining: (number | undefined)[];

  constructor(
    private readonly rules: readonly R[],
    private readonly random: Random,
  ) {
    this.#remaining = rules.map((rule) => rule.count);
  }

  /** The rules that can still hit: counted ones not used up, and every percentage. */
  get active(): R[] {
    return this.rules.filter((_, i) => (this.#remaining[i] ?? 1) > 0);
  }

  /** The first rule that `applies` to this request and hits it, or undefined. */
  draw(applies: (rule: R) => boolean = () => true): R | undefined {
    for (const [i, rule] of this.rules.entries()) {
      if (!applies(rule)) continue;
      const remaining = this.#remaining[i];
      if (remaining !== undefined) {
        if (remaining > 0) {
          this.#remaining[i] = remaining - 1;
          return rule;
        }
      } else if (this.random() * 100 < (rule.percent ?? 0)) {
        return rule;
      }
    }
    return undefined;
  }
}
