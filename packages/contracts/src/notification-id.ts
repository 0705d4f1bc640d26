import { createHash } from "node:crypto";

/**
 * The `Nats-Msg-Id` of a notification on QBO_WEBHOOKS: lowercase hex SHA-256 of its body, so the
 * same body stored twice (a QuickBooks retry, a repeated CDC finding) is kept once.
 */
export function notificationMsgId(body: Uint8Array): string {
  return createHash("sha256").update(body).digest("hex");
}
