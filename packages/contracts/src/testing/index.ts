export type { SampleCloudEventOptions } from "./sample-notifications.js";
export { sampleCloudEvent, sampleCloudEventBody, sampleLegacyBody } from "./sample-notifications.js";
