import { once } from "node:events";
import type { Server } from "node:http";

/** Where a server listens; port 0 picks a free one. */
export interface ListenAddress {
  readonly port: number;
  readonly host: string;
}

/** Starts `server` listening at `address`; resolves to the port it got. */
export async function listen(server: Server, address: ListenAddress): Promise<number> {
  server.listen(address.port, address.host);
  await once(server, "listening");
  const bound = server.address();
  // A TCP listen always has an address object; a string would mean a pipe or socket path.
  if (bound === null || typeof bound === "string") throw new Error(`listening on ${String(bound)}, not a TCP port`);
  return bound.port;
}
