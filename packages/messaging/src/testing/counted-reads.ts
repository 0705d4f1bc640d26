import type { KV } from "@nats-io/kv";
import type { NatsClient } from "../nats-client.js";

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

/**
 * The reads of `bucket` that anyone connected to `client`'s server sends while `work` runs: KV gets
 * travel as direct gets, so they are seen on their subject whichever process or object sends them.
 */
export async function directGetsDuring(client: NatsClient, bucket: string, work: () => Promise<void>): Promise<number> {
  let reads = 0;
  const sub = client.nc.subscribe(`$JS.API.DIRECT.GET.KV_${bucket}.>`, {
    callback: () => {
      reads++;
    },
  });
  try {
    await client.nc.flush();
    await work();
    await client.nc.flush();
  } finally {
    sub.unsubscribe();
  }
  return reads;
}
