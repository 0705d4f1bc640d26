import { Buckets } from "@qbo-webhooks/contracts";
import { kvKey, type NatsClient, purgeKeys } from "@qbo-webhooks/messaging";

/**
 * Removes our copy of the realm and its watermarks (a company removed with its data); answers how
 * many stored values went. Changes already in the feed stay there: the feed is history.
 */
export async function forgetRealmData(client: NatsClient, realmId: string): Promise<number> {
  let removed = 0;
  for (const bucket of [Buckets.entities, Buckets.watermarks])
    removed += await purgeKeys(client, bucket, kvKey(realmId));
  return removed;
}
