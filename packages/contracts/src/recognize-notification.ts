import type { z } from "zod";
import { CloudEventNotification } from "./cloud-event-notification.js";
import { LegacyNotification } from "./legacy-notification.js";

export type PayloadForm = "cloudevents" | "legacy";

export type Recognition =
  | { kind: "notification"; form: "cloudevents"; eventCount: number; notification: CloudEventNotification }
  | { kind: "notification"; form: "legacy"; eventCount: number; notification: LegacyNotification }
  /** Signed, but carries no change: QuickBooks' endpoint checks and test pings. */
  | { kind: "empty" }
  /** Signed, but not a form we understand: quarantine it so it can be replayed once understood. */
  | { kind: "unrecognized"; reason: string };

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Tells which webhook form a raw body is, by shape, as Intuit advises (QBO.md §1b): an array of
 * events with `specversion` is CloudEvents, an object with `eventNotifications` is legacy. The body
 * is validated in full, so a format change shows up here as `unrecognized` rather than downstream.
 */
export function recognizeNotification(body: Uint8Array): Recognition {
  let json: unknown;
  try {
    const text = decoder.decode(body);
    if (text.trim() === "") return { kind: "empty" };
    json = JSON.parse(text);
  } catch (err) {
    return { kind: "unrecognized", reason: `not JSON: ${(err as Error).message}` };
  }

  if (Array.isArray(json)) {
    if (json.length === 0) return { kind: "empty" };
    const parsed = CloudEventNotification.safeParse(json);
    if (!parsed.success) return { kind: "unrecognized", reason: `CloudEvents: ${summarize(parsed.error)}` };
    return { kind: "notification", form: "cloudevents", eventCount: parsed.data.length, notification: parsed.data };
  }

  if (typeof json === "object" && json !== null && "eventNotifications" in json) {
    const parsed = LegacyNotification.safeParse(json);
    if (!parsed.success) return { kind: "unrecognized", reason: `legacy: ${summarize(parsed.error)}` };
    const eventCount = parsed.data.eventNotifications.reduce(
      (sum, realm) => sum + (realm.dataChangeEvent?.entities.length ?? 0),
      0,
    );
    if (eventCount === 0) return { kind: "empty" };
    return { kind: "notification", form: "legacy", eventCount, notification: parsed.data };
  }

  return { kind: "unrecognized", reason: "unknown shape: neither a CloudEvents array nor eventNotifications" };
}

/** The first few issues on one line: the reason travels in a NATS header and a log field. */
function summarize(error: z.ZodError): string {
  const issues = error.issues.slice(0, 3).map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`);
  const more = error.issues.length > 3 ? ` (+${error.issues.length - 3} more)` : "";
  return issues.join("; ") + more;
}
