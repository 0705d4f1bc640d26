import { CDC_UNSUPPORTED_ENTITIES, type EntityName } from "@qbo-webhooks/contracts";
import type { QboObject, QuickBooksClient } from "@qbo-webhooks/quickbooks";

/** What a scan of one realm found. */
export interface ScanResult {
  /** Objects changed or deleted (`status: "Deleted"`) in the window, per entity type. */
  readonly found: Map<EntityName, QboObject[]>;
  /**
   * For types listed in full (a resync): ids our copy held before the listing began that QuickBooks
   * no longer has. Taken before listing, so an entity created meanwhile is never mistaken for one deleted.
   */
  readonly vanished: Map<EntityName, string[]>;
}

/**
 * Everything that changed in a realm since `since`, through QuickBooks' caps (QBO.md §4-§5): one
 * CDC call for all types; when it hits the 1,000-object cap, one per type; a type that alone hits
 * the cap is listed in full with paged queries. Types CDC does not cover are queried by
 * LastUpdatedTime. Without `since` (a realm never verified, or beyond CDC's 30 days) every type is
 * listed in full.
 */
export async function scanRealm(
  quickbooks: QuickBooksClient,
  realmId: string,
  types: readonly EntityName[],
  since: Date | undefined,
  copyIds: (entity: EntityName) => Promise<Set<string>>,
  progress: (typesDone: number, found: number) => Promise<void>,
): Promise<ScanResult> {
  const found = new Map<EntityName, QboObject[]>();
  const vanished = new Map<EntityName, string[]>();
  let done = 0;
  let count = 0;
  const take = async (entity: EntityName, objects: QboObject[]) => {
    found.set(entity, [...(found.get(entity) ?? []), ...objects]);
    count += objects.length;
  };
  const typeDone = async () => progress(++done, count);
  const listAll = async (entity: EntityName, from?: Date) => {
    const before = from ? undefined : await copyIds(entity);
    const listed = new Set<string>();
    for await (const page of quickbooks.queryAll(realmId, entity, from ? { since: from } : {})) {
      for (const object of page) listed.add(object.Id);
      await take(entity, page);
    }
    if (before)
      vanished.set(
        entity,
        [...before].filter((id) => !listed.has(id)),
      );
  };

  const cdcTypes = types.filter((entity) => !CDC_UNSUPPORTED_ENTITIES.has(entity));
  const queryTypes = types.filter((entity) => CDC_UNSUPPORTED_ENTITIES.has(entity));
  if (!since) {
    for (const entity of types) {
      await listAll(entity);
      await typeDone();
    }
    return { found, vanished };
  }
  const together = cdcTypes.length > 0 ? await quickbooks.changedSince(realmId, cdcTypes, since) : undefined;
  for (const entity of cdcTypes) {
    const answer =
      together?.complete || cdcTypes.length === 1 ? together : await quickbooks.changedSince(realmId, [entity], since);
    if (answer?.complete) {
      await take(entity, [
        ...(answer.changed.get(entity)?.values() ?? []),
        ...(answer.deleted.get(entity)?.values() ?? []),
      ]);
    } else {
      await listAll(entity);
    }
    await typeDone();
  }
  // No CDC for these: their changes by query; deletions of them show only in a full resync.
  for (const entity of queryTypes) {
    await listAll(entity, since);
    await typeDone();
  }
  return { found, vanished };
}
