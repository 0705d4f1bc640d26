import { defineConfig } from "vitest/config";

/** `npm run bench` here: the long measurements that are not tests (`*.bench-run.ts`), one at a time. */
export default defineConfig({
  test: {
    include: ["src/**/*.bench-run.ts"],
    fileParallelism: false,
    server: { deps: { external: [/\/(packages|services)\/[^/]+\/dist\//] } },
  },
});
