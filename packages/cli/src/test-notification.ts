import { DeliverPolicy } from "@nats-io/jetstream";
import {
  AppliedChange,
  type EntityName,
  jsonOrUndefined,
  Streams,
  Subjects,
  signIntuitPayload,
} from "@qbo-webhooks/contracts";
import type { RealmRegistry } from "@qbo-webhooks/entity-store";
import { type NatsClient, openViewer } from "@qbo-webhooks/messaging";
import { z } from "zod";

/** A failure the user can act on: the message says what to do. */
export class TestNotificationError extends Error {
  override name = "TestNotificationError";
}

export interface Ingress {
  /** The ingress's webhook URL. */
  readonly url: string;
  /** The verifier token QuickBooks signs with (QBO_VERIFIER_TOKENS' first). */
  readonly verifierToken: string;
}

/** The ingress's answer to one signed notification. */
export interface IngressAnswer {
  readonly status: number;
  readonly text: string;
}

/** Signs `body` as QuickBooks does and POSTs it to the ingress. */
export async function postSigned(ingress: Ingress, body: string, legacy: boolean): Promise<IngressAnswer> {
  let response: Response;
  try {
    response = await fetch(ingress.url, {
      method: "POST",
      headers: {
        "content-type": legacy ? "application/json" : "application/cloudevents+json",
        "intuit-signature": signIntuitPayload(body, ingress.verifierToken),
      },
      body,
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw new TestNotificationError(
      `could not reach the ingress at ${ingress.url}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  return { status: response.status, text: await response.text() };
}

const UnannouncedChange = z.object({
  entity: z.object({ Id: z.string(), SyncToken: z.string() }).loose(),
  notifications: z.object({ cloudevents: z.array(z.string()).min(1), legacy: z.array(z.string()).min(1) }),
});
const CompanySnapshot = z.record(z.string(), z.record(z.string(), z.unknown()));

/** What a local test notification came to. */
export interface TestNotificationResult {
  readonly realmId: string;
  readonly entity: EntityName;
  readonly id: string;
  readonly operation: "Create" | "Update";
  readonly syncToken: string;
  readonly answer: IngressAnswer;
  /** From the POST to the change's arrival in QBO_CHANGES. */
  readonly arrivedAfterMs: number;
}

/**
 * The test notification of a local instance (`npm start`): changes an entity of a connected sandbox
 * company without the sandbox announcing it (an Update of one, or a Create when it has none), signs
 * the notification QuickBooks would have sent and POSTs it to the ingress, then follows the feed
 * until that version of the entity arrives. Only our notification can have brought it there.
 */
export async function sendLocalTestNotification(
  client: NatsClient,
  realms: RealmRegistry,
  target: { sandboxUrl: string; ingress: Ingress },
  options: { realmId?: string; entity: EntityName; legacy: boolean; timeoutMs: number },
): Promise<TestNotificationResult> {
  const realmId = await testNotificationRealm(client, realms, options.realmId);
  const sandbox = (path: string, init?: RequestInit) =>
    fetch(`${target.sandboxUrl}/_sandbox${path}`, { ...init, signal: AbortSignal.timeout(10_000) }).catch(
      (err: Error) => {
        throw new TestNotificationError(`could not reach the sandbox at ${target.sandboxUrl}: ${err.message}`);
      },
    );
  const snapshot = await sandbox(`/companies/${realmId}`);
  if (!snapshot.ok) throw new TestNotificationError(`the sandbox has no company ${realmId}: pass --realm`);
  const existing = Object.keys(CompanySnapshot.parse(await snapshot.json())[options.entity] ?? {})[0];
  const operation = existing === undefined ? "Create" : "Update";

  // Following before the change is made: its arrival cannot slip past.
  const subject = Subjects.changes(realmId, options.entity);
  const viewer = await openViewer(client.js, Streams.changes.name, {
    filter_subjects: [subject],
    deliver_policy: DeliverPolicy.New,
  });
  const { messages } = viewer;
  try {
    const changed = await sandbox(`/companies/${realmId}/unannounced-changes`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ entity: options.entity, operation, ...(existing ? { id: existing } : {}) }),
    });
    if (!changed.ok) throw new TestNotificationError(`the sandbox refused the change: ${await changed.text()}`);
    const { entity, notifications } = UnannouncedChange.parse(await changed.json());
    const body = (options.legacy ? notifications.legacy : notifications.cloudevents)[0] ?? "";
    const started = performance.now();
    const answer = await postSigned(target.ingress, body, options.legacy);
    if (answer.status !== 200) {
      throw new TestNotificationError(`the ingress answered ${answer.status} ${answer.text}: nothing was stored`);
    }
    const timer = setTimeout(() => messages.stop(), options.timeoutMs);
    try {
      for await (const msg of messages) {
        const change = AppliedChange.safeParse(jsonOrUndefined(msg.string()));
        if (change.success && change.data.id === entity.Id && change.data.data?.SyncToken === entity.SyncToken) {
          return {
            realmId,
            entity: options.entity,
            id: entity.Id,
            operation,
            syncToken: entity.SyncToken,
            answer,
            arrivedAfterMs: performance.now() - started,
          };
        }
      }
    } finally {
      clearTimeout(timer);
    }
    throw new TestNotificationError(
      `the ingress stored it (200), but ${options.entity} ${entity.Id} did not reach the feed within ` +
        `${options.timeoutMs / 1000} s: work queued ahead of it (a new company's initial load) may still be running ` +
        `(qbo-webhooks realms list, the processors' qbo_consumer_pending); else see qbo-webhooks dlq list and the services' logs`,
    );
  } finally {
    await viewer.close();
  }
}

/**
 * The realm asked for, if connected; else the connected one with the fewest change events waiting:
 * a realm's changes are applied in order, so a new one waits behind a company's initial load.
 */
export async function testNotificationRealm(
  client: NatsClient,
  realms: RealmRegistry,
  asked: string | undefined,
): Promise<string> {
  const all = await realms.list();
  const connected = all.filter((r) => r.status === "connected").map((r) => r.realmId);
  if (asked !== undefined) {
    // A registry that does not know the realm at all (no reconciler) cannot say; the feed will.
    if (all.some((r) => r.realmId === asked) && !connected.includes(asked)) {
      throw new TestNotificationError(
        `company ${asked} is not connected; connected: ${connected.join(", ") || "none"} (qbo-webhooks realms list)`,
      );
    }
    return asked;
  }
  if (connected.length === 0) {
    throw new TestNotificationError(
      "no company is connected yet: npm start connects the sandbox's companies once the reconciler leads (a few seconds); or pass --realm",
    );
  }
  const waiting = await eventsWaitingByRealm(client);
  return connected.reduce((best, realm) => ((waiting.get(realm) ?? 0) < (waiting.get(best) ?? 0) ? realm : best));
}

/** Change events not yet applied, per realm (QBO_EVENTS is a work queue: what is there waits). */
async function eventsWaitingByRealm(client: NatsClient): Promise<Map<string, number>> {
  const info = await client.jsm.streams.info(Streams.events.name, {
    subjects_filter: Streams.events.subjects[0] ?? ">",
  });
  const waiting = new Map<string, number>();
  for (const [subject, count] of Object.entries(info.state.subjects ?? {})) {
    const realmId = subject.split(".").at(-1) ?? "";
    waiting.set(realmId, (waiting.get(realmId) ?? 0) + count);
  }
  return waiting;
}
