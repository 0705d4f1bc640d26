export { EntityStore } from "./entity-store.js";
export type { Verdict } from "./entity-versions.js";
export { EntityVersions } from "./entity-versions.js";
export { RealmRegistry } from "./realm-registry.js";
