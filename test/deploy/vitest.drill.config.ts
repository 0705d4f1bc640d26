import { defineConfig } from "vitest/config";
import { sharedConfig } from "../../vitest.shared.js";

/**
 * The alerting drill alone (`npm run test:drill`; `npm test` runs it after the other lanes): Prometheus,
 * Alertmanager and the pipeline keep time on a 60-times clock, and the other lanes' load slowed both them
 * and the tests beside them. Its `include` replaces the shared one (merging would add every test file).
 */
const shared = sharedConfig({ integration: true });
export default defineConfig({ ...shared, test: { ...shared.test, include: ["src/alerting-drill.test.ts"] } });
