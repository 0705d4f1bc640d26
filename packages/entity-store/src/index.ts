export { DeferredWatermarks } from "./deferred-watermarks.js";
export type { Announce } from "./entity-store.js";
export { EntityStore, type ReadAhead } from "./entity-store.js";
export { entityVersionOf, isNewerVersion, StoredEntity } from "./entity-version.js";
export type { Verdict } from "./entity-versions.js";
export { EntityVersions, versionKeysOf } from "./entity-versions.js";
export { forgetRealmData } from "./forget-realm.js";
export type { FollowedRealm, RealmFollower } from "./realm-registry.js";
export { RealmRegistry } from "./realm-registry.js";
