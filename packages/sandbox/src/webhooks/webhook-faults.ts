import { z } from "zod";
import type { Random } from "../company/entity-fields.js";
import { FaultDraws, frequency, hasOneFrequency, ONE_FREQUENCY } from "../fault-draws.js";

/**
 * A misbehaviour to inject into deliveries: for a share of notifications (`percent`) or for the
 * next `count` of them. `delay` holds a notification back by `delayMs` of sandbox time, so later
 * ones overtake it; `reorder` swaps a notification with the one after it.
 */
export const WebhookFault = z
  .object({
    kind: z.enum(["drop", "duplicate", "reorder", "delay", "badSignature"]),
    delayMs: z.number().int().min(0).optional(),
    ...frequency,
  })
  .refine(hasOneFrequency, ONE_FREQUENCY)
  .refine((fault) => fault.kind !== "delay" || fault.delayMs !== undefined, { message: "delay needs delayMs" });
export type WebhookFault = z.infer<typeof WebhookFault>;

export type FaultKind = WebhookFault["kind"];

/** The active faults of one app; `applies` consumes a one-off count when it fires. */
export class FaultPlan {
  #draws: FaultDraws<WebhookFault>;

  constructor(private readonly random: Random) {
    this.#draws = new FaultDraws([], random);
  }

  set(faults: readonly WebhookFault[]): void {
    this.#draws = new FaultDraws(faults, this.random);
  }

  get active(): WebhookFault[] {
    return this.#draws.active;
  }

  /** Whether a fault of `kind` hits this notification; returns the fault when it does. */
  applies(kind: FaultKind): WebhookFault | undefined {
    return this.#draws.draw((fault) => fault.kind === kind);
  }
}
