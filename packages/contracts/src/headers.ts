/** NATS message header names shared by every service. */
export const Headers = {
  /** JetStream's dedupe key; for notifications, lowercase hex SHA-256 of the raw body. */
  msgId: "Nats-Msg-Id",
  /** When ingress received the notification, ISO 8601. */
  receivedAt: "Qbo-Received-At",
  /** `cloudevents` or `legacy`, as recognized by ingress; `cdc` for the reconciler's `CdcFindings`. */
  payloadForm: "Qbo-Payload-Form",
  /** QuickBooks' `intuit-t-id` request header, kept for support cases with Intuit. */
  intuitTid: "Qbo-Intuit-Tid",
  /** Why a message was dead-lettered or quarantined, one line. */
  dlqReason: "Qbo-Dlq-Reason",
  /** The pipeline stage that dead-lettered a message (`ingress`, `ordering`, `processor`, `delivery`). */
  dlqStage: "Qbo-Dlq-Stage",
  /** On QBO_DELIVERIES: the change's place in its realm's delivery order (1, 2, 3, …). */
  realmSequence: "Qbo-Realm-Seq",
  /** On a replayed delivery: the dead letter's own `webhook-id`, kept so the app can deduplicate. */
  webhookId: "Qbo-Webhook-Id",
  /** The realm a dead letter belongs to, where the stage knows it: counted per company. */
  realmId: "Qbo-Realm-Id",
  /** Retries so far of a dead-lettered message. */
  attempts: "Qbo-Attempts",
} as const;
