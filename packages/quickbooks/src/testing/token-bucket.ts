import { Buckets } from "@qbo-webhooks/contracts";
import { type KV, NatsClient, openBucket } from "@qbo-webhooks/messaging";
import { NatsServerProcess } from "@qbo-webhooks/messaging/testing";
import { createLogger } from "@qbo-webhooks/observability";
import { Sandbox } from "@qbo-webhooks/sandbox";

/** What the token tests share: a nats-server with the token bucket, and a sandbox with app "app" (client/secret). */
export interface TokenBucket {
  readonly nats: NatsServerProcess;
  readonly kv: KV;
  readonly sandbox: Sandbox;
  close(): Promise<void>;
}

export async function startTokenBucket(): Promise<TokenBucket> {
  const nats = await NatsServerProcess.start();
  const logger = createLogger({ service: "test", level: "silent" });
  const client = await NatsClient.connect({ servers: [nats.url], name: "test", logger });
  const kv = await openBucket(client, Buckets.tokens, { replicas: 1 });
  const sandbox = await Sandbox.start({ speed: 0 });
  sandbox.registerApp({ appId: "app", clientId: "client", clientSecret: "secret", verifierToken: "v" });
  return {
    nats,
    kv,
    sandbox,
    async close() {
      await sandbox.close();
      await client.drain();
      await nats.dispose();
    },
  };
}
