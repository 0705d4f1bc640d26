export {
  booleanFlag,
  type CommonSettings,
  checkNatsAuthEnv,
  commaList,
  commonEnv,
  commonSettings,
  exportsTraces,
  integer,
  loadNatsAuth,
  natsAuthOf,
  publicHttpEnv,
} from "./env-fields.js";
export { type ListenAddress, listen, PortInUseError } from "./listen.js";
export { ConfigError, loadEnv } from "./load-env.js";
