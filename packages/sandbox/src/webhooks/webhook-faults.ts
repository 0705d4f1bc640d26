import { z } from "zod";
import type { Random } from "../company/entity-fields.js";

/**
 * A misbehaviour to inject into deliveries: for a share of notifications (`percent`) or for the
 * next `count` of them. `delay` holds a notification back by `delayMs` of sandbox time, so later
 * ones overtake it; `reorder` swaps a notification with the one after it.
 */
export const WebhookFault = z
  .object({
    kind: z.enum(["drop", "duplicate", "reorder", "delay", "badSignature"]),
    percent: z.number().min(0).max(100).optional(),
    count: z.number().int().min(1).optional(),
    delayMs: z.number().int().min(0).optional(),
  })
  .refine((fault) => (fault.percent === undefined) !== (fault.count === undefined), {
    message: "give exactly one of percent or count",
  })
  .refine((fault) => fault.kind !== "delay" || fault.delayMs !== undefined, { message: "delay needs delayMs" });
export type WebhookFault = z.infer<typeof WebhookFault>;

export type FaultKind = WebhookFault["kind"];

/** The active faults of one app; `applies` consumes a one-off count when it fires. */
export class FaultPlan {
  #faults: { fault: WebhookFault; remaining: number | undefined }[] = [];

  constructor(private readonly random: Random) {}

  set(faults: readonly WebhookFault[]): void {
    this.#faults = faults.map((fault) => ({ fault, remaining: fault.count }));
  }

  get active(): WebhookFault[] {
    return this.#faults.filter((f) => f.remaining === undefined || f.remaining > 0).map((f) => f.fault);
  }

  /** Whether a fault of `kind` hits this notification; returns the fault when it does. */
  applies(kind: FaultKind): WebhookFault | undefined {
    for (const entry of this.#faults) {
      if (entry.fault.kind !== kind) continue;
      if (entry.remaining !== undefined) {
        if (entry.remaining === 0) continue;
        entry.remaining--;
        return entry.fault;
      }
      if (this.random() * 100 < (entry.fault.percent ?? 0)) return entry.fault;
    }
    return undefined;
  }
}
