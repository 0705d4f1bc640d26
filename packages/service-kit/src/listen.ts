import { once } from "node:events";
import type { Server } from "node:http";

/** Where a server listens; port 0 picks a free one. */
export interface ListenAddress {
  readonly port: number;
  readonly host: string;
  /** The environment variable that sets the port, named when it is taken. */
  readonly variable?: string;
}

/** The port a service wants is taken by another program: the service cannot start. */
export class PortInUseError extends Error {
  override readonly name = "PortInUseError";
  readonly code = "PORT_IN_USE";
  constructor(readonly address: ListenAddress) {
    super(
      `port ${address.port} on ${address.host} is taken by another program: stop it, or set ` +
        `${address.variable ?? "the port's variable"} to a free port`,
    );
  }
}

/**
 * Starts `server` listening at `address`; resolves to the port it got.
 * @throws {PortInUseError} when another program holds the port.
 */
export async function listen(server: Server, address: ListenAddress): Promise<number> {
  server.listen(address.port, address.host);
  try {
    await once(server, "listening");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EADDRINUSE") throw new PortInUseError(address);
    throw err;
  }
  const bound = server.address();
  // A TCP listen always has an address object; a string would mean a pipe or socket path.
  if (bound === null || typeof bound === "string") throw new Error(`listening on ${String(bound)}, not a TCP port`);
  return bound.port;
}
