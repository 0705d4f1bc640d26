import {
  CDC_UNSUPPORTED_ENTITIES,
  type ChangeEvent,
  type EntityName,
  entityNameFromAnyCase,
} from "@qbo-webhooks/contracts";
import type { QboObject, QuickBooksClient } from "@qbo-webhooks/quickbooks";

export type FetchStrategy = "cdc" | "query";

/** QuickBooks' times have one-second resolution; look back a little further than the oldest event. */
const CDC_MARGIN_MS = 2000;
const CDC_LOOKBACK_MS = 29 * 24 * 3600 * 1000;

/** The state of each entity a batch names, by type and id; an id missing from it is gone from QuickBooks. */
export type Fetched = Map<EntityName, Map<string, QboObject>>;

/**
 * The current state of every entity the events name (Delete needs none). With the CDC strategy,
 * as QuickBooks advises, one call covers all types back to the oldest event; ids it does not
 * return (CDC's cap, types it does not cover, events older than its 30 days) are read with
 * `Id IN` queries. Entities deleted since are absent from the answer.
 *
 * @throws {QuickBooksError} when QuickBooks cannot answer.
 */
export async function fetchChanged(
  quickbooks: QuickBooksClient,
  strategy: FetchStrategy,
  realmId: string,
  events: readonly ChangeEvent[],
): Promise<Fetched> {
  const wanted = new Map<EntityName, Set<string>>();
  for (const event of events) {
    const entity = entityNameFromAnyCase(event.entity);
    if (!entity || event.operation === "Delete") continue;
    wanted.set(entity, (wanted.get(entity) ?? new Set<string>()).add(event.id));
  }
  const fetched: Fetched = new Map();
  const oldest = Math.min(...events.map((event) => Date.parse(event.occurredAt)));
  const cdcTypes = [...wanted.keys()].filter((entity) => !CDC_UNSUPPORTED_ENTITIES.has(entity));
  if (strategy === "cdc" && cdcTypes.length > 0 && Date.now() - oldest < CDC_LOOKBACK_MS) {
    const cdc = await quickbooks.changedSince(realmId, cdcTypes, new Date(oldest - CDC_MARGIN_MS));
    for (const entity of cdcTypes) {
      const found = cdc.changed.get(entity) ?? new Map<string, QboObject>();
      fetched.set(entity, found);
      const gone = cdc.deleted.get(entity);
      const ids = wanted.get(entity) ?? new Set<string>();
      // Complete answers settle every id: returned, deleted, or unchanged since (then already applied).
      if (cdc.complete) wanted.delete(entity);
      else for (const id of ids) if (found.has(id) || gone?.has(id)) ids.delete(id);
    }
  }
  for (const [entity, ids] of wanted) {
    if (ids.size === 0) continue;
    const read = await quickbooks.readMany(realmId, entity, [...ids]);
    fetched.set(entity, new Map([...(fetched.get(entity) ?? []), ...read]));
  }
  return fetched;
}
