import { type EntityVersion, parseQboTimestamp } from "@qbo-webhooks/contracts";
import { QboObject } from "@qbo-webhooks/quickbooks";

/** An entity as our copy keeps it: as QuickBooks answered it, checked for its id and version. */
export const StoredEntity = QboObject;
export type StoredEntity = QboObject;

/** The version an app orders changes of one entity by. */
export function entityVersionOf(data: StoredEntity): EntityVersion {
  return { syncToken: data.SyncToken ?? "0", lastUpdatedTime: data.MetaData?.LastUpdatedTime ?? "" };
}

/**
 * Whether `candidate` is a later version than `stored`: a later LastUpdatedTime wins; QuickBooks
 * times have one-second resolution, so within the same second (or without times) the higher
 * SyncToken does.
 */
export function isNewerVersion(candidate: StoredEntity, stored: StoredEntity): boolean {
  const time = (o: StoredEntity) => parseQboTimestamp(o.MetaData?.LastUpdatedTime ?? "");
  const [a, b] = [time(candidate), time(stored)];
  if (!Number.isNaN(a) && !Number.isNaN(b) && a !== b) return a > b;
  return Number(candidate.SyncToken ?? 0) > Number(stored.SyncToken ?? 0);
}
