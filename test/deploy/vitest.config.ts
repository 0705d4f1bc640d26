import { mergeConfig } from "vitest/config";
import { sharedConfig } from "../../vitest.shared.js";

/** Everything but the alerting drill, which runs alone (vitest.drill.config.ts): its pages keep time. */
export default mergeConfig(sharedConfig({ integration: true }), {
  test: { exclude: ["**/node_modules/**", "src/alerting-drill.test.ts"] },
});
