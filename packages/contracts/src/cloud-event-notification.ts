import { z } from "zod";
import { type EntityName, entityNameFromAnyCase } from "./entity-names.js";
import { type Operation, operationFromWord } from "./operation.js";
import { QboTimestamp } from "./qbo-timestamp.js";

const EVENT_TYPE = /^qbo\.([a-z]+)\.([a-z]+)\.v1$/i;

/** `qbo.<entity>.<verb>.v1` split into the API entity name and operation (QBO.md §1b). */
export const QboEventType = z.string().transform((type, ctx): { entity: EntityName; operation: Operation } => {
  const [, entityWord = "", verb = ""] = EVENT_TYPE.exec(type) ?? [];
  const entity = entityNameFromAnyCase(entityWord);
  const operation = operationFromWord(verb);
  if (entity && operation) return { entity, operation };
  ctx.addIssue({ code: "custom", message: `unknown event type "${type}"` });
  return z.NEVER;
});

/** One CloudEvents event as QuickBooks sends it; `id` is unique per event and is the dedupe key. */
export const QboCloudEvent = z.object({
  specversion: z.string().startsWith("1."),
  id: z.string().min(1),
  source: z.string().min(1),
  type: QboEventType,
  time: QboTimestamp,
  intuitentityid: z.string().min(1),
  intuitaccountid: z.string().min(1),
  datacontenttype: z.string().optional(),
  // On Merge, `data.deletedid` is the id merged away; other content is unconfirmed (QBO.md §1b).
  data: z.looseObject({ deletedid: z.string().min(1).optional() }).optional(),
});
export type QboCloudEvent = z.infer<typeof QboCloudEvent>;

/** The current webhook body: a JSON array of CloudEvents, possibly for several realms (QBO.md §1b). */
export const CloudEventNotification = z.array(QboCloudEvent);
export type CloudEventNotification = z.infer<typeof CloudEventNotification>;
