import { ENTITY_NAMES, type EntityName, type Operation, operationsOf } from "@qbo-webhooks/contracts";
import type { SandboxClock } from "../clock.js";
import { SandboxError } from "../sandbox-error.js";
import type { CompanyState } from "../sandbox-state.js";
import { type Random, sampleFields } from "./entity-fields.js";
import { formatQboTime } from "./qbo-time.js";

/** An entity as the QuickBooks API returns it. */
export interface QboEntity {
  readonly Id: string;
  readonly SyncToken: string;
  readonly domain: "QBO";
  readonly MetaData: { readonly CreateTime: string; readonly LastUpdatedTime: string };
  readonly [field: string]: unknown;
}

/** What changed, when (sandbox ms): the source of webhooks and of CDC. */
export interface ChangeRecord {
  readonly realmId: string;
  readonly entity: EntityName;
  readonly id: string;
  readonly operation: Operation;
  readonly at: number;
  /** On Merge: the id merged away. */
  readonly deletedId?: string;
}

interface Stored {
  data: QboEntity;
  updatedAt: number;
}

/** A deleted entity, remembered for CDC (QBO.md §4: deleted objects are returned with status Deleted). */
export interface Tombstone {
  readonly entity: EntityName;
  readonly id: string;
  readonly deletedAt: number;
}

/** One QuickBooks company (realm) and its data. */
export class Company {
  readonly #entities = new Map<EntityName, Map<string, Stored>>();
  readonly #tombstones = new Map<string, Tombstone>();
  /** Ids are per entity type, as in QuickBooks: a Customer 7 and an Invoice 7 can both exist. */
  readonly #nextId = new Map<EntityName, number>();
  #lastChangeAt = 0;
  /** While set, changes are collected here instead of announced. */
  #unannounced: ChangeRecord[] | undefined;

  constructor(
    readonly realmId: string,
    readonly name: string,
    private readonly clock: SandboxClock,
    private readonly random: Random,
    private readonly onChange: (change: ChangeRecord) => void,
  ) {}

  /** A company as saved by {@link toState}, with the clock, randomness and listener of the sandbox it joins. */
  static fromState(
    state: CompanyState,
    clock: SandboxClock,
    random: Random,
    onChange: (change: ChangeRecord) => void,
  ): Company {
    const company = new Company(state.realmId, state.name, clock, random, onChange);
    company.#lastChangeAt = state.lastChangeAt;
    for (const entity of ENTITY_NAMES) {
      const next = state.nextIds[entity];
      if (next !== undefined) company.#nextId.set(entity, next);
    }
    for (const { entity, data, updatedAt } of state.entities) company.#table(entity).set(data.Id, { data, updatedAt });
    for (const tombstone of state.tombstones) company.#tombstones.set(`${tombstone.entity}/${tombstone.id}`, tombstone);
    return company;
  }

  toState(): CompanyState {
    return {
      realmId: this.realmId,
      name: this.name,
      lastChangeAt: this.#lastChangeAt,
      nextIds: Object.fromEntries(this.#nextId),
      entities: [...this.#entities].flatMap(([entity, table]) =>
        [...table.values()].map(({ data, updatedAt }) => ({ entity, data, updatedAt })),
      ),
      tombstones: [...this.#tombstones.values()],
    };
  }

  create(entity: EntityName, fields: Record<string, unknown> = {}): QboEntity {
    this.#allow(entity, "Create");
    const stored = this.#insert(entity, fields, this.#tick());
    this.#emit(entity, stored.data.Id, "Create", stored.updatedAt);
    return stored.data;
  }

  /**
   * Books kept long before any app was connected: `count(entity)` entities of each type, created
   * at times spread evenly over `[from, to)` (ms), announced to nobody. Only for a company that has
   * had no change yet: a company's change times only move forward.
   */
  seedHistory(entities: readonly EntityName[], count: (entity: EntityName) => number, from: number, to: number): void {
    if (this.#lastChangeAt > from) throw new SandboxError("INVALID_REQUEST", "history must come before every change");
    const creatable = entities.filter((entity) => operationsOf(entity).includes("Create"));
    const plan = creatable.flatMap((entity) => Array.from({ length: count(entity) }, () => entity));
    const step = (to - from) / Math.max(1, plan.length);
    for (const [i, entity] of plan.entries()) {
      const at = Math.floor(from + i * step);
      this.#insert(entity, {}, at);
      this.#lastChangeAt = Math.max(this.#lastChangeAt, at);
    }
  }

  #insert(entity: EntityName, fields: Record<string, unknown>, at: number): Stored {
    const next = this.#nextId.get(entity) ?? 1;
    this.#nextId.set(entity, next + 1);
    const id = String(next);
    const data: QboEntity = {
      ...sampleFields(entity, id, this.random),
      ...fields,
      Id: id,
      SyncToken: "0",
      domain: "QBO",
      MetaData: { CreateTime: formatQboTime(at), LastUpdatedTime: formatQboTime(at) },
    };
    const stored = { data, updatedAt: at };
    this.#table(entity).set(id, stored);
    return stored;
  }

  update(entity: EntityName, id: string, fields: Record<string, unknown> = {}): QboEntity {
    this.#allow(entity, "Update");
    return this.#change(entity, id, "Update", fields);
  }

  /** Void zeroes a transaction's amounts and keeps it (QBO.md §1c). */
  void(entity: EntityName, id: string): QboEntity {
    this.#allow(entity, "Void");
    return this.#change(entity, id, "Void", { TotalAmt: 0, Balance: 0, PrivateNote: "Voided" });
  }

  email(entity: EntityName, id: string): QboEntity {
    this.#allow(entity, "Emailed");
    return this.#change(entity, id, "Emailed", { EmailStatus: "EmailSent" });
  }

  delete(entity: EntityName, id: string): void {
    this.#allow(entity, "Delete");
    this.#remove(entity, id, this.#tick());
    this.#emit(entity, id, "Delete", this.#lastChangeAt);
  }

  /** Merges `fromId` into `intoId`: `fromId` is deleted, `intoId` updated; one Merge event names both. */
  merge(entity: EntityName, fromId: string, intoId: string): QboEntity {
    this.#allow(entity, "Merge");
    if (fromId === intoId) throw new SandboxError("INVALID_REQUEST", "cannot merge an entity into itself");
    this.#get(entity, intoId);
    const at = this.#tick();
    this.#remove(entity, fromId, at);
    const merged = this.#write(entity, intoId, {}, at);
    this.#emit(entity, intoId, "Merge", at, fromId);
    return merged;
  }

  get(entity: EntityName, id: string): QboEntity | undefined {
    return this.#entities.get(entity)?.get(id)?.data;
  }

  list(entity: EntityName): QboEntity[] {
    return [...(this.#entities.get(entity)?.values() ?? [])].map((stored) => stored.data);
  }

  /** Entities changed after `since` (sandbox ms) and entities deleted after it, for CDC. */
  changedSince(entity: EntityName, since: number): { changed: QboEntity[]; deleted: Tombstone[] } {
    const changed = [...(this.#entities.get(entity)?.values() ?? [])]
      .filter((stored) => stored.updatedAt > since)
      .map((stored) => stored.data);
    const deleted = [...this.#tombstones.values()].filter((t) => t.entity === entity && t.deletedAt > since);
    return { changed, deleted };
  }

  /** The ground truth: every live entity by type and id. */
  snapshot(): Partial<Record<EntityName, Record<string, QboEntity>>> {
    const truth: Partial<Record<EntityName, Record<string, QboEntity>>> = {};
    for (const [entity, table] of this.#entities) {
      if (table.size === 0) continue;
      truth[entity] = Object.fromEntries([...table].map(([id, stored]) => [id, stored.data]));
    }
    return truth;
  }

  /** Ids of live entities of a type, for the traffic generator. */
  ids(entity: EntityName): string[] {
    return [...(this.#entities.get(entity)?.keys() ?? [])];
  }

  #change(entity: EntityName, id: string, operation: Operation, fields: Record<string, unknown>): QboEntity {
    this.#get(entity, id);
    const at = this.#tick();
    const data = this.#write(entity, id, fields, at);
    this.#emit(entity, id, operation, at);
    return data;
  }

  #write(entity: EntityName, id: string, fields: Record<string, unknown>, at: number): QboEntity {
    const current = this.#get(entity, id);
    const data: QboEntity = {
      ...current,
      ...fields,
      Id: id,
      SyncToken: String(Number(current.SyncToken) + 1),
      domain: "QBO",
      MetaData: { CreateTime: current.MetaData.CreateTime, LastUpdatedTime: formatQboTime(at) },
    };
    this.#table(entity).set(id, { data, updatedAt: at });
    return data;
  }

  #remove(entity: EntityName, id: string, at: number): void {
    this.#get(entity, id);
    this.#table(entity).delete(id);
    this.#tombstones.set(`${entity}/${id}`, { entity, id, deletedAt: at });
  }

  #get(entity: EntityName, id: string): QboEntity {
    const data = this.get(entity, id);
    if (!data) throw new SandboxError("NOT_FOUND", `${entity} ${id} does not exist in company ${this.realmId}`);
    return data;
  }

  #allow(entity: EntityName, operation: Operation): void {
    if (!operationsOf(entity).includes(operation)) {
      throw new SandboxError("OPERATION_NOT_ALLOWED", `QuickBooks does not ${operation} ${entity} (QBO.md §1c)`);
    }
  }

  #table(entity: EntityName): Map<string, Stored> {
    let table = this.#entities.get(entity);
    if (!table) {
      table = new Map();
      this.#entities.set(entity, table);
    }
    return table;
  }

  // Strictly increasing change times, so every change of a company is newer than the one before.
  #tick(): number {
    this.#lastChangeAt = Math.max(Math.floor(this.clock.now()), this.#lastChangeAt + 1);
    return this.#lastChangeAt;
  }

  /**
   * Makes changes no webhook announces, as when QuickBooks misses one (CDC still shows them), and
   * returns them with `fn`'s result: a caller can announce them itself.
   */
  unannounced<T>(fn: () => T): { result: T; changes: ChangeRecord[] } {
    const changes: ChangeRecord[] = [];
    this.#unannounced = changes;
    try {
      return { result: fn(), changes };
    } finally {
      this.#unannounced = undefined;
    }
  }

  #emit(entity: EntityName, id: string, operation: Operation, at: number, deletedId?: string): void {
    const change = { realmId: this.realmId, entity, id, operation, at, ...(deletedId ? { deletedId } : {}) };
    if (this.#unannounced) this.#unannounced.push(change);
    else this.onChange(change);
  }
}
