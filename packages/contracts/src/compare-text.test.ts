import { describe, expect, it } from "vitest";
import { compareText } from "./compare-text.js";

describe("compareText", () => {
  it("orders as localeCompare does for realm ids, names and RFC 3339 times", () => {
    const samples = [
      "9130357766545726",
      "123146326666529",
      "4620816365223390",
      "company-10",
      "company-2",
      "2026-12-07T05:00:00Z",
      "2026-12-07T04:59:59Z",
    ];
    expect([...samples].sort(compareText)).toEqual([...samples].sort((a, b) => a.localeCompare(b)));
  });

  it("answers 0 for equal strings", () => {
    expect(compareText("a", "a")).toBe(0);
  });
});
