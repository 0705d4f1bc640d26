import type { z } from "zod";

export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * Parses environment variables with a service's schema.
 *
 * @throws {ConfigError} naming every bad variable and what it should be, never echoing values.
 */
export function loadEnv<T extends z.ZodType>(schema: T, env: NodeJS.ProcessEnv): z.infer<T> {
  const parsed = schema.safeParse(env);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => `  ${issue.path.join(".")} ${issue.message}`);
  throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
}
