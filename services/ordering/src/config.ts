import {
  type CommonSettings,
  checkNatsAuthEnv,
  commonEnv,
  commonSettings,
  integer,
  loadEnv,
} from "@qbo-webhooks/service-kit";
import { z } from "zod";

export const OrderingEnv = z.object({
  ...commonEnv(9091),
  /** Processor partitions; changing it moves realms between partitions, so keep it fixed per deployment. */
  PARTITIONS: integer(1, 4096, 64),
  /** Attempts at a notification before it is dead-lettered instead of blocking the stream. */
  MAX_ATTEMPTS: integer(1, 100, 5),
});

export interface OrderingConfig extends CommonSettings {
  readonly partitions: number;
  readonly maxAttempts: number;
}

/** @throws {ConfigError} naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv): OrderingConfig {
  const c = loadEnv(OrderingEnv.superRefine(checkNatsAuthEnv), env);
  return {
    ...commonSettings(c),
    partitions: c.PARTITIONS,
    maxAttempts: c.MAX_ATTEMPTS,
  };
}
