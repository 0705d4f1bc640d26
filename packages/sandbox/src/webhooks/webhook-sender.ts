import { randomUUID } from "node:crypto";
import { signIntuitPayload } from "@qbo-webhooks/contracts";
import type { SandboxClock } from "../clock.js";
import type { ChangeRecord } from "../company/company.js";
import type { Random } from "../company/entity-fields.js";
import { INACTIVE_AFTER_MS, retryDelay } from "./delivery-policy.js";
import { buildBodies, emptyBody } from "./notification-body.js";
import type { WebhookAppSettings } from "./webhook-app.js";
import { FaultPlan, type WebhookFault } from "./webhook-faults.js";

export type NotificationState = "held" | "queued" | "retrying" | "delivered" | "dropped";

/** How long (sandbox time) the reorder fault waits for a notification to swap with. */
const REORDER_HOLD_MS = 10_000;

/** History kept per app; older settled entries are forgotten so a long demo run stays small. */
const HISTORY_LIMIT = 50_000;

export interface Notification {
  readonly id: string;
  readonly body: string;
  readonly changes: readonly ChangeRecord[];
  readonly badSignature: boolean;
  /** A copy sent by the duplicate fault. */
  readonly duplicateOf?: string;
  state: NotificationState;
  attempts: number;
  droppedReason?: string;
}

export interface DeliveryAttempt {
  readonly notificationId: string;
  readonly attempt: number;
  /** Sandbox time of the attempt. */
  readonly at: number;
  /** Real milliseconds until the answer, or until the 3 s timeout. */
  readonly durationMs: number;
  readonly status?: number;
  readonly error?: string;
  readonly ok: boolean;
}

export interface DeliveryState {
  readonly queueDepth: number;
  readonly paused: boolean;
  readonly blacklisted: boolean;
  readonly inactive: boolean;
  readonly faults: WebhookFault[];
  readonly notifications: readonly Notification[];
  readonly attempts: readonly DeliveryAttempt[];
}

/**
 * Turns one app's changes into signed notifications and delivers them by QuickBooks' rules:
 * aggregation, the 3 s budget, the current (ordered, head-of-line) or legacy (drop and blacklist)
 * retry policy, and injected faults.
 */
export class WebhookSender {
  readonly #faults: FaultPlan;
  readonly #notifications: Notification[] = [];
  readonly #attempts: DeliveryAttempt[] = [];
  /** Current policy: the ordered queue. Legacy: notifications waiting for an unpaused endpoint. */
  #queue: Notification[] = [];
  #buffer: ChangeRecord[] = [];
  #flushScheduled = false;
  #reorderHeld: Notification | undefined;
  #headBusy = false;
  #paused = false;
  #blacklisted = false;
  #inactive = false;
  #failingSince: number | undefined;
  readonly #pending = new Set<Promise<unknown>>();

  constructor(
    readonly settings: WebhookAppSettings,
    private readonly clock: SandboxClock,
    random: Random,
  ) {
    this.#faults = new FaultPlan(random);
  }

  /** Takes a change of a connected company; aggregation decides when it is sent. */
  offer(change: ChangeRecord): void {
    const subscribed = this.settings.subscriptions;
    if (subscribed && !subscribed[change.entity]?.includes(change.operation)) return;
    this.#buffer.push(change);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // The sandbox environment is near real time; production aggregates for 1, 3 or 5 minutes (QBO.md §3).
    const window = this.settings.environment === "production" ? this.settings.aggregationMinutes * 60_000 : 0;
    this.clock.after(window, () => this.#flush());
  }

  /**
   * Faults apply to the notifications of changes made while they are in force: changes still
   * waiting for their notification are sent under the faults they were made under.
   */
  setFaults(faults: readonly WebhookFault[]): void {
    if (this.#buffer.length > 0) this.#flush();
    this.#faults.set(faults);
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.#pump();
  }

  /**
   * Lifts a blacklist or inactive mark, as re-enabling the endpoint in the portal does. The endpoint
   * counts as failing until a delivery succeeds, so re-enabling does not restart the day.
   */
  reenable(): void {
    this.#blacklisted = false;
    this.#inactive = false;
    this.#pump();
  }

  /** Sends an endpoint check (a signed notification without events) outside the queue; resolves to its status. */
  async ping(): Promise<DeliveryAttempt> {
    const notification = this.#record(emptyBody(this.settings.payloadForm), [], false);
    notification.state = "queued";
    const attempt = await this.#post(notification);
    notification.state = attempt.ok ? "delivered" : "dropped";
    return attempt;
  }

  state(): DeliveryState {
    return {
      queueDepth: this.#queue.length + (this.#reorderHeld ? 1 : 0),
      paused: this.#paused,
      blacklisted: this.#blacklisted,
      inactive: this.#inactive,
      faults: this.#faults.active,
      notifications: this.#notifications,
      attempts: this.#attempts,
    };
  }

  /** Resolves once nothing is being delivered right now (retries scheduled for later do not count). */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  #flush(): void {
    this.#flushScheduled = false;
    const changes = this.#buffer;
    this.#buffer = [];
    for (const body of buildBodies(changes, this.settings.payloadForm, `intuit.${this.settings.appId}`)) {
      const notification = this.#record(body.text, body.changes, this.#faults.applies("badSignature") !== undefined);
      this.#admit(notification);
    }
  }

  #record(body: string, changes: readonly ChangeRecord[], badSignature: boolean, duplicateOf?: string) {
    const notification: Notification = {
      id: randomUUID(),
      body,
      changes,
      badSignature,
      ...(duplicateOf ? { duplicateOf } : {}),
      state: "held",
      attempts: 0,
    };
    this.#notifications.push(notification);
    if (this.#notifications.length > HISTORY_LIMIT) {
      const settled = (n: Notification) => n.state === "delivered" || n.state === "dropped";
      const keep = this.#notifications.filter((n, i) => i >= HISTORY_LIMIT / 10 || !settled(n));
      this.#notifications.splice(0, this.#notifications.length, ...keep);
    }
    return notification;
  }

  /** Applies the drop, delay, reorder and duplicate faults, then queues what is left. */
  #admit(notification: Notification): void {
    if (this.#faults.applies("drop")) {
      this.#drop(notification, "fault: drop");
      return;
    }
    const delay = this.#faults.applies("delay");
    if (delay) {
      this.clock.after(delay.delayMs ?? 0, () => this.#enqueue(notification));
      return;
    }
    if (!this.#reorderHeld && this.#faults.applies("reorder")) {
      this.#reorderHeld = notification;
      // With nothing after it to swap with, it goes out late rather than never.
      this.clock.after(REORDER_HOLD_MS, () => {
        if (this.#reorderHeld !== notification) return;
        this.#reorderHeld = undefined;
        this.#enqueue(notification);
      });
      return;
    }
    this.#enqueue(notification);
    if (this.#faults.applies("duplicate")) {
      this.#enqueue(this.#record(notification.body, notification.changes, notification.badSignature, notification.id));
    }
    const held = this.#reorderHeld;
    if (held) {
      this.#reorderHeld = undefined;
      this.#enqueue(held);
    }
  }

  #enqueue(notification: Notification): void {
    if (this.#blacklisted || this.#inactive) {
      this.#drop(notification, this.#blacklisted ? "endpoint blacklisted" : "endpoint inactive");
      return;
    }
    notification.state = "queued";
    this.#queue.push(notification);
    this.#pump();
  }

  #pump(): void {
    if (this.#paused || this.#blacklisted || this.#inactive) return;
    if (this.settings.policy === "legacy") {
      // Legacy: every notification is delivered and retried on its own.
      const ready = this.#queue;
      this.#queue = [];
      for (const notification of ready) this.#track(this.#attemptLegacy(notification));
      return;
    }
    const head = this.#queue[0];
    if (this.#headBusy || !head) return;
    this.#headBusy = true;
    this.#track(this.#attemptHead(head));
  }

  async #attemptHead(head: Notification): Promise<void> {
    const attempt = await this.#post(head);
    if (attempt.ok) {
      head.state = "delivered";
      this.#queue.shift();
      this.#headBusy = false;
      this.#pump();
      return;
    }
    // Nothing newer goes out until the head is delivered (QBO.md §3).
    head.state = "retrying";
    this.clock.after(retryDelay("current", head.attempts) ?? 0, () => {
      this.#headBusy = false;
      this.#pump();
    });
  }

  async #attemptLegacy(notification: Notification): Promise<void> {
    if (this.#paused) {
      this.#queue.push(notification);
      return;
    }
    if (this.#blacklisted || this.#inactive) {
      this.#drop(notification, this.#blacklisted ? "endpoint blacklisted" : "endpoint inactive");
      return;
    }
    const attempt = await this.#post(notification);
    if (attempt.ok) {
      notification.state = "delivered";
      return;
    }
    const delay = retryDelay("legacy", notification.attempts);
    if (delay === undefined) {
      this.#drop(notification, "retries exhausted");
      this.#blacklist();
      return;
    }
    notification.state = "retrying";
    this.clock.after(delay, () => this.#track(this.#attemptLegacy(notification)));
  }

  async #post(notification: Notification): Promise<DeliveryAttempt> {
    notification.attempts++;
    const at = this.clock.now();
    const started = performance.now();
    const result = await this.#send(notification);
    const attempt: DeliveryAttempt = {
      notificationId: notification.id,
      attempt: notification.attempts,
      at,
      durationMs: performance.now() - started,
      ...result,
    };
    this.#attempts.push(attempt);
    if (this.#attempts.length > HISTORY_LIMIT) this.#attempts.splice(0, HISTORY_LIMIT / 10);
    this.#noteHealth(attempt.ok);
    return attempt;
  }

  async #send(notification: Notification): Promise<{ ok: boolean; status?: number; error?: string }> {
    const url = this.settings.endpointUrl;
    if (!url) return { ok: false, error: "no endpoint configured" };
    const legacy = this.settings.payloadForm === "legacy";
    const token = notification.badSignature ? `${this.settings.verifierToken}-wrong` : this.settings.verifierToken;
    try {
      const response = await fetch(url, {
        method: "POST",
        body: notification.body,
        signal: AbortSignal.timeout(this.settings.deliveryTimeoutMs),
        headers: {
          // Legacy request headers as Intuit documents them (QBO.md §2).
          "content-type": legacy ? "application/json; charset=utf-8" : "application/cloudevents+json",
          "intuit-signature": signIntuitPayload(notification.body, token),
          "intuit-created-time": new Date(this.clock.now()).toISOString(),
          "intuit-t-id": randomUUID(),
          "intuit-notification-schema-version": legacy ? "0.1" : "1.0",
          "user-agent": "intuit_notification_server/0.1",
        },
      });
      await response.arrayBuffer();
      // Only a 200 counts; any other answer, 2xx included, is a failed delivery (QBO.md §3).
      return { ok: response.status === 200, status: response.status };
    } catch (err) {
      const timedOut = err instanceof Error && err.name === "TimeoutError";
      return { ok: false, error: timedOut ? `no answer within ${this.settings.deliveryTimeoutMs} ms` : String(err) };
    }
  }

  #noteHealth(ok: boolean): void {
    if (ok) {
      this.#failingSince = undefined;
      return;
    }
    this.#failingSince ??= this.clock.now();
    this.#checkInactive();
  }

  #blacklist(): void {
    this.#blacklisted = true;
    // A blacklisted endpoint gets no attempts, so nothing else would notice the day passing.
    const since = this.#failingSince;
    if (since !== undefined) this.clock.at(since + INACTIVE_AFTER_MS, () => this.#checkInactive());
  }

  /** Legacy: an endpoint failing for a day without a success goes inactive (QBO.md §3). */
  #checkInactive(): void {
    const since = this.#failingSince;
    if (this.settings.policy === "legacy" && since !== undefined && this.clock.now() - since >= INACTIVE_AFTER_MS) {
      this.#inactive = true;
    }
  }

  #drop(notification: Notification, reason: string): void {
    notification.state = "dropped";
    notification.droppedReason = reason;
  }

  #track(work: Promise<unknown>): void {
    this.#pending.add(work);
    void work.finally(() => this.#pending.delete(work));
  }
}
