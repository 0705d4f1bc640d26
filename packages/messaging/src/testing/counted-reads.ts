import type { KV } from "@nats-io/kv";

/** A bucket that counts its `get` calls (each one KV round trip), for tests of what a cache saves. */
export function countedReads(kv: KV): { readonly kv: KV; reads(): number } {
  let reads = 0;
  const counted = new Proxy(kv, {
    get(target, property, receiver) {
      if (property === "get")
        return (...args: Parameters<KV["get"]>) => {
          reads++;
          return target.get(...args);
        };
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { kv: counted, reads: () => reads };
}
