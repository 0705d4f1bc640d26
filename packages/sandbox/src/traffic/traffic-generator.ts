import { type EntityName, type Operation, operationsOf } from "@qbo-webhooks/contracts";
import type { Company } from "../company/company.js";
import type { Random } from "../company/entity-fields.js";

export interface TrafficOptions {
  readonly realms: readonly Company[];
  /** Changes per real second, across all realms. */
  readonly ratePerSecond: number;
  readonly random: Random;
  /** Zipf exponent of how changes spread over realms: 0 is even; the default 1.1 makes a few realms busy. */
  readonly skew?: number;
  /** Chance per change that it starts a burst instead: `burstSize` changes to one realm at once. */
  readonly burstProbability?: number;
  readonly burstSize?: number;
  readonly entities?: readonly EntityName[];
  /** Relative weights of operations. */
  readonly mix?: Partial<Record<Operation, number>>;
}

const CORE_ENTITIES: readonly EntityName[] = [
  "Customer",
  "Vendor",
  "Item",
  "Account",
  "Invoice",
  "Payment",
  "Bill",
  "Estimate",
  "JournalEntry",
  "Employee",
];
const DEFAULT_MIX: Record<Operation, number> = { Create: 25, Update: 50, Delete: 5, Merge: 3, Void: 7, Emailed: 10 };

/** Realistic change traffic for demos and benchmarks: a rate, skewed realms, bursts, a mix of operations. */
export class TrafficGenerator {
  readonly #options: Required<Omit<TrafficOptions, "mix">> & { mix: Record<Operation, number> };
  readonly #realmWeights: number[];
  #timer: NodeJS.Timeout | undefined;
  #made = 0;
  #owed = 0;

  constructor(options: TrafficOptions) {
    this.#options = {
      skew: 1.1,
      burstProbability: 0.001,
      burstSize: 200,
      entities: CORE_ENTITIES,
      ...options,
      mix: { ...DEFAULT_MIX, ...options.mix },
    };
    const weights = options.realms.map((_, rank) => 1 / (rank + 1) ** this.#options.skew);
    const total = weights.reduce((a, b) => a + b, 0);
    this.#realmWeights = weights.map((w) => w / total);
  }

  /** Changes made so far. */
  get made(): number {
    return this.#made;
  }

  start(): void {
    // About one change per tick (between 10 and 100 ms): the sandbox environment sends webhooks in
    // near real time, so changes made apart arrive in notifications of their own (QBO.md §3).
    const tickMs = Math.min(100, Math.max(10, Math.round(1000 / this.#options.ratePerSecond)));
    this.#timer = setInterval(() => {
      this.#owed += (this.#options.ratePerSecond * tickMs) / 1000;
      const due = Math.floor(this.#owed);
      this.#owed -= due;
      this.step(due);
    }, tickMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Makes `count` changes now (bursts count as one). */
  step(count: number): void {
    for (let i = 0; i < count; i++) {
      const company = this.#pickRealm();
      if (this.#options.random() < this.#options.burstProbability) {
        for (let b = 0; b < this.#options.burstSize; b++) this.#change(company);
      } else {
        this.#change(company);
      }
    }
  }

  #change(company: Company): void {
    const { random } = this.#options;
    const operation = this.#pickOperation();
    const candidates = this.#options.entities.filter((e) => operationsOf(e).includes(operation));
    const entity = candidates[Math.floor(random() * candidates.length)];
    const ids = entity ? company.ids(entity) : [];
    const pick = () => ids[Math.floor(random() * ids.length)] as string;
    this.#made++;
    if (!entity || operation === "Create" || ids.length < (operation === "Merge" ? 2 : 1)) {
      company.create(entity && operationsOf(entity).includes("Create") ? entity : "Customer");
      return;
    }
    switch (operation) {
      case "Update":
        company.update(entity, pick(), { PrivateNote: `edited ${this.#made}` });
        return;
      case "Delete":
        company.delete(entity, pick());
        return;
      case "Merge": {
        const [from, into] = [pick(), pick()];
        if (from === into) company.update(entity, into);
        else company.merge(entity, from, into);
        return;
      }
      case "Void":
        company.void(entity, pick());
        return;
      case "Emailed":
        company.email(entity, pick());
        return;
    }
  }

  #pickRealm(): Company {
    let roll = this.#options.random();
    for (const [i, weight] of this.#realmWeights.entries()) {
      roll -= weight;
      if (roll <= 0) return this.#options.realms[i] as Company;
    }
    return this.#options.realms[this.#options.realms.length - 1] as Company;
  }

  #pickOperation(): Operation {
    const entries = Object.entries(this.#options.mix) as [Operation, number][];
    let roll = this.#options.random() * entries.reduce((sum, [, w]) => sum + w, 0);
    for (const [operation, weight] of entries) {
      roll -= weight;
      if (roll <= 0) return operation;
    }
    return "Update";
  }
}
