import { readFileSync } from "node:fs";
import type { z } from "zod";

const README = new URL("../../../../README.md", import.meta.url);

/** The variables a service's environment schema reads that the README never names (as `NAME`). */
export function undocumentedVariables(env: z.ZodObject): string[] {
  const readme = readFileSync(README, "utf8");
  return Object.keys(env.shape).filter((name) => !readme.includes(`\`${name}\``));
}
