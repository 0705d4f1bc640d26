import { describe, expect, it } from "vitest";
import { parseQboTimestamp } from "./qbo-timestamp.js";

describe("qbo-timestamp", () => {
  it.each([
    ["2015-10-05T14:42:19-0700", "2015-10-05T21:42:19.000Z"],
    ["2015-12-23T12:55:50-08:00", "2015-12-23T20:55:50.000Z"],
    ["2016-10-05T03:09:04.000Z", "2016-10-05T03:09:04.000Z"],
    ["2025-09-10T21:31:25.179851517Z", "2025-09-10T21:31:25.179Z"],
    ["2015-12-23T12:56:06.196-08:00", "2015-12-23T20:56:06.196Z"],
  ])("qbo-timestamp - parses %s", (text, iso) => {
    expect(new Date(parseQboTimestamp(text)).toISOString()).toBe(iso);
  });

  it.each(["", "2015-10-05", "2015-10-05 14:42:19Z", "2015-13-45T99:00:00Z", "yesterday"])(
    "qbo-timestamp - rejects %j",
    (text) => {
      expect(parseQboTimestamp(text)).toBeNaN();
    },
  );
});
