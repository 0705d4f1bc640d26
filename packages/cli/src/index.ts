export type { DeadLetter } from "./dead-letters.js";
export { listDeadLetters, readDeadLetter, replayDeadLetter } from "./dead-letters.js";
export { disconnectRealm, openRealms, realmLines, requestCdc } from "./realms.js";
