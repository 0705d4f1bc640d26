export type { StreamPlacement } from "./ensure-stream.js";
export { ensureStream, streamConfig } from "./ensure-stream.js";
export type { NatsClientOptions } from "./nats-client.js";
export { NatsClient } from "./nats-client.js";
export type { PublishErrorCode, PublishOptions, Stored } from "./publish-durable.js";
export { PublishError, publishDurable } from "./publish-durable.js";
