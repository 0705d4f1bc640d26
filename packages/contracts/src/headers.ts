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
  /** The pipeline stage that dead-lettered a message (`ingress`, `ordering`, `processor`). */
  dlqStage: "Qbo-Dlq-Stage",
} as const;
