import { Headers, Streams } from "@qbo-webhooks/contracts";
import { type NatsClient, openViewer } from "@qbo-webhooks/messaging";
import type { Logger } from "@qbo-webhooks/observability";

/**
 * Dead letters per realm (those whose stage knew the realm: `Qbo-Realm-Id`), counted by reading
 * the dead-letter stream's headers from its start and following it. A letter replayed and removed
 * meanwhile still counts: this is how many were dead-lettered, not how many wait.
 */
export class DeadLetterCounts {
  readonly #counts = new Map<string, number>();
  #stopped = false;
  #stop: (() => void) | undefined;

  private constructor() {}

  static follow(client: NatsClient, logger: Logger): DeadLetterCounts {
    const counts = new DeadLetterCounts();
    void (async () => {
      const { messages, close } = await openViewer(client.js, Streams.dlq.name, { headers_only: true });
      counts.#stop = () => void close();
      if (counts.#stopped) counts.#stop();
      for await (const msg of messages) {
        const realmId = msg.headers?.get(Headers.realmId);
        if (realmId) counts.#counts.set(realmId, (counts.#counts.get(realmId) ?? 0) + 1);
      }
    })().catch((err: unknown) => logger.warn({ err }, "dead-letter count ended"));
    return counts;
  }

  /** Dead letters of the realm seen so far. */
  of(realmId: string): number {
    return this.#counts.get(realmId) ?? 0;
  }

  stop(): void {
    this.#stopped = true;
    this.#stop?.();
  }
}
