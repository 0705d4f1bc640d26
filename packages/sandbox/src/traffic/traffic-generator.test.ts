import { describe, expect, it } from "vitest";
import { SandboxClock } from "../clock.js";
import { type ChangeRecord, Company } from "../company/company.js";
import { seededRandom } from "../company/entity-fields.js";
import { TrafficGenerator } from "./traffic-generator.js";

function realms(count: number) {
  const clock = new SandboxClock({ speed: 0 });
  const changes: ChangeRecord[] = [];
  const random = seededRandom(9);
  return {
    changes,
    companies: Array.from(
      { length: count },
      (_, i) => new Company(String(i), `Co ${i}`, clock, random, (c) => changes.push(c)),
    ),
  };
}

describe("traffic-generator", () => {
  it("traffic - skews changes towards a few busy realms and mixes operations QuickBooks allows (QBO.md §1c)", () => {
    const { companies, changes } = realms(20);
    const traffic = new TrafficGenerator({
      realms: companies,
      ratePerSecond: 0,
      random: seededRandom(1),
      burstProbability: 0,
    });
    traffic.step(3000);
    expect(traffic.made).toBe(3000);
    const perRealm = companies.map((c) => changes.filter((ch) => ch.realmId === c.realmId).length);
    expect(perRealm[0]).toBeGreaterThan(5 * (perRealm[19] ?? 0));
    const operations = new Set(changes.map((ch) => ch.operation));
    expect(operations).toEqual(new Set(["Create", "Update", "Delete", "Merge", "Void", "Emailed"]));
  });

  it("traffic - a burst puts many changes on one realm at once", () => {
    const { companies, changes } = realms(5);
    const traffic = new TrafficGenerator({
      realms: companies,
      ratePerSecond: 0,
      random: seededRandom(2),
      burstProbability: 1,
      burstSize: 50,
    });
    traffic.step(1);
    expect(changes).toHaveLength(50);
    expect(new Set(changes.map((c) => c.realmId)).size).toBe(1);
  });

  it("traffic - runs at its rate in real time until stopped", async () => {
    const { companies } = realms(3);
    const traffic = new TrafficGenerator({
      realms: companies,
      ratePerSecond: 100,
      random: seededRandom(3),
      burstProbability: 0,
    });
    traffic.start();
    await new Promise((resolve) => setTimeout(resolve, 550));
    traffic.stop();
    const made = traffic.made;
    expect(made).toBeGreaterThanOrEqual(30);
    expect(made).toBeLessThanOrEqual(70);
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(traffic.made).toBe(made);
  });
});
