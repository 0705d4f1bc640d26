export { countedReads, directGetsDuring } from "./counted-reads.js";
export type { NatsServerOptions } from "./nats-server-process.js";
export { findNatsServerBinary, freePort, NatsServerProcess } from "./nats-server-process.js";
export { quietPortOffset } from "./port-offset.js";
