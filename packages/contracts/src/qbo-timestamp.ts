import { z } from "zod";

// QuickBooks writes offsets with or without a colon (`-0700`, `-07:00`) and fractions of any
// length (`.179851517Z`), which neither Date.parse nor z.iso.datetime accept in full (QBO.md §1a, §1b).
const QBO_TIMESTAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})$/;

/** Milliseconds since the epoch of a QuickBooks timestamp, or NaN when it is not one. */
export function parseQboTimestamp(text: string): number {
  const match = QBO_TIMESTAMP.exec(text);
  if (!match) return Number.NaN;
  const [, dateTime, fraction = "", zone = "Z"] = match;
  const millis = fraction.padEnd(3, "0").slice(0, 3);
  const offset = zone === "Z" ? "Z" : `${zone.slice(0, 3)}:${zone.slice(-2)}`;
  return Date.parse(`${dateTime}.${millis}${offset}`);
}

/** A QuickBooks timestamp, kept as sent; refine rejects text that is not a valid instant. */
export const QboTimestamp = z.string().refine((text) => !Number.isNaN(parseQboTimestamp(text)), {
  message: "not a QuickBooks timestamp (expected e.g. 2015-10-05T14:42:19-0700 or 2016-10-05T03:09:04.000Z)",
});
