/**
 * The partition of a realm: FNV-1a of its id modulo `partitions`. Stable across processes and
 * versions, so every ordering replica routes a realm to the same processor partition.
 */
export function partitionOf(realmId: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < realmId.length; i++) {
    hash ^= realmId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % partitions;
}
