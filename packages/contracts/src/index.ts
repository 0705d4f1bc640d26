export { AppliedChange, DeliveredChange, EntityVersion } from "./applied-change.js";
export {
  CdcFindings,
  ChangeEvent,
  changeEventFromObject,
  changeEventsFromCloudEvents,
  changeEventsFromLegacy,
  changeKey,
} from "./change-event.js";
export { CloudEventNotification, QboCloudEvent, QboEventType } from "./cloud-event-notification.js";
export type { CompanyConditionType } from "./company-conditions.js";
export {
  COMPANY_CONDITION_TYPES,
  CompanyCondition,
  companyConditions,
  rfc3339,
  sameConditions,
} from "./company-conditions.js";
export { compareText } from "./compare-text.js";
export type { EntityName } from "./entity-names.js";
export { ENTITY_NAMES, entityNameFromAnyCase } from "./entity-names.js";
export { CDC_UNSUPPORTED_ENTITIES, operationsOf } from "./entity-operations.js";
export { Headers } from "./headers.js";
export { isSignedByIntuit, signIntuitPayload } from "./intuit-signature.js";
export { jsonOrUndefined } from "./json-or-undefined.js";
export { LEADER_KEY, LeaderRecord } from "./leader-record.js";
export { LegacyEntityChange, LegacyNotification } from "./legacy-notification.js";
export { notificationMsgId } from "./notification-id.js";
export { Operation, operationFromWord } from "./operation.js";
export { partitionOf } from "./partition.js";
export { parseQboTimestamp, QboTimestamp } from "./qbo-timestamp.js";
export { RealmRecord, RealmStatus } from "./realm-record.js";
export type { PayloadForm, Recognition } from "./recognize-notification.js";
export { recognizeNotification } from "./recognize-notification.js";
export type { BucketName, DlqStage, StreamRetention, StreamSpec } from "./streams.js";
export { BucketLimits, Buckets, Consumers, DLQ_STAGES, PARTITIONS_METADATA, Streams, Subjects } from "./streams.js";
