import { setTimeout as delay } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { createMetricsRegistry } from "./metrics-registry.js";

describe("metrics-registry", () => {
  it("metrics-registry - a stall of the event loop still shows in its lag metrics", async () => {
    const registry = createMetricsRegistry("test");
    await delay(250);
    const blockedUntil = Date.now() + 400;
    while (Date.now() < blockedUntil) {
      // Busy: nothing else runs on the loop meanwhile.
    }
    await delay(250);
    const text = await registry.metrics();
    const max = Number(/^nodejs_eventloop_lag_max_seconds\{[^}]*\} (\S+)$/m.exec(text)?.[1]);
    expect(max).toBeGreaterThan(0.3);
    expect(text).toMatch(/^nodejs_eventloop_lag_p99_seconds\{service="test"\} /m);
  });
});
