import { ProtocolHandler, TE } from "@nats-io/nats-core/internal";

/**
 * @nats-io/nats-core 3.3 writes what a connection has queued on a microtask after the first command,
 * so every request, message or timer handled in its own callback costs a socket write of its own
 * (socket writes were 20-38 % of each stage's CPU in profiles at 50 changes/s). The first command of
 * a batch now schedules the write after the event loop's current phase (setImmediate): the commands
 * of every callback that runs in that phase (HTTP requests parsed together, messages delivered
 * together) go out in one write, in the order they were sent; the ingress saturated 20-33 % higher
 * in paired runs (README, "Benchmarks"). A full buffer is still written at once, as before.
 * Applied once, when this module loads (NatsClient imports it).
 */
ProtocolHandler.prototype.sendCommand = function (
  this: ProtocolHandler,
  cmd: string | Uint8Array,
  ...payloads: Uint8Array[]
): void {
  const queued = this.outbound.length();
  this.outbound.fill(typeof cmd === "string" ? TE.encode(cmd) : cmd, ...payloads);
  if (queued === 0) setImmediate(() => flush(this));
  else if (this.outbound.size() >= this.pendingLimit) flush(this);
};

/** Writes the connection's queue: the library's own `flushPending`, private in its types. */
function flush(handler: ProtocolHandler): void {
  // biome-ignore lint/complexity/useLiteralKeys: a dotted name would not type-check (the method is private)
  handler["flushPending"]();
}
