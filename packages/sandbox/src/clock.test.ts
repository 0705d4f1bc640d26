import { describe, expect, it } from "vitest";
import { SandboxClock } from "./clock.js";

describe("clock", () => {
  it("clock - stands still at speed 0 and moves only by advance", async () => {
    const clock = new SandboxClock({ start: 1_000_000, speed: 0 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(clock.now()).toBe(1_000_000);
    await clock.advance(5000);
    expect(clock.now()).toBe(1_005_000);
  });

  it("clock - advance runs due timers in time order, each at its own time, and waits for them", async () => {
    const clock = new SandboxClock({ start: 0, speed: 0 });
    const seen: [string, number][] = [];
    clock.after(300, () => seen.push(["c", clock.now()]));
    clock.after(100, async () => {
      await new Promise((resolve) => setTimeout(resolve, 10));
      seen.push(["a", clock.now()]);
    });
    clock.after(200, () => seen.push(["b", clock.now()]));
    clock.after(900, () => seen.push(["late", clock.now()]));
    await clock.advance(500);
    expect(seen).toEqual([
      ["a", 100],
      ["b", 200],
      ["c", 300],
    ]);
    expect(clock.now()).toBe(500);
  });

  it("clock - a scaled clock fires timers after sandbox time / speed of real time", async () => {
    const clock = new SandboxClock({ start: 0, speed: 60 });
    const started = performance.now();
    await new Promise<void>((resolve) => clock.after(6000, () => resolve()));
    const realMs = performance.now() - started;
    // 6 s of sandbox time at 60x is 100 ms real.
    expect(realMs).toBeGreaterThanOrEqual(90);
    expect(realMs).toBeLessThan(1000);
    clock.stop();
  });

  it("clock - cancelled timers do not run", async () => {
    const clock = new SandboxClock({ start: 0, speed: 0 });
    let ran = false;
    const cancel = clock.after(10, () => {
      ran = true;
    });
    cancel();
    await clock.advance(100);
    expect(ran).toBe(false);
  });
});
