import { DeliverPolicy } from "@nats-io/jetstream";
import { AppliedChange, jsonOrUndefined, Streams, Subjects } from "@qbo-webhooks/contracts";
import { type NatsClient, openViewer } from "@qbo-webhooks/messaging";

export interface TailOptions {
  /** From the oldest change kept, not from now. */
  readonly all: boolean;
  /** Only this company's changes. */
  readonly realmId?: string;
}

/** Where a tail reports: each change (undefined when a message is not one), and once it follows. */
export interface TailSink {
  readonly show: (change: AppliedChange | undefined, raw: string) => void;
  readonly following: () => void;
}

/**
 * Follows the change feed as a viewer (nothing is left on the server when it stops, and the
 * pipeline's backlog never counts it), handing each change to `sink`, until `stop` is aborted.
 */
export async function tailChanges(
  client: NatsClient,
  options: TailOptions,
  sink: TailSink,
  stop: AbortSignal,
): Promise<void> {
  const viewer = await openViewer(client.js, Streams.changes.name, {
    filter_subjects: [options.realmId ? Subjects.changes(options.realmId, "*") : Subjects.changes("*", "*")],
    deliver_policy: options.all ? DeliverPolicy.All : DeliverPolicy.New,
  });
  const close = () => void viewer.close();
  stop.addEventListener("abort", close, { once: true });
  if (stop.aborted) close();
  try {
    sink.following();
    for await (const msg of viewer.messages) {
      const change = AppliedChange.safeParse(jsonOrUndefined(msg.string()));
      sink.show(change.success ? change.data : undefined, msg.string());
    }
  } finally {
    stop.removeEventListener("abort", close);
    await viewer.close();
  }
}

/** One change as a line: when it happened, realm, operation, entity and id, its version, how long it took to apply. */
export function changeLine(change: AppliedChange): string {
  const what = change.version ? `SyncToken ${change.version.syncToken}` : "gone";
  const lag = ((Date.parse(change.appliedAt) - Date.parse(change.occurredAt)) / 1000).toFixed(2);
  return `${change.occurredAt}  realm ${change.realmId}  ${change.operation.padEnd(7)} ${change.entity} ${change.id}  ${what}  (+${lag}s)`;
}
