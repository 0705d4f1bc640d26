import { defineConfig } from "vitest/config";

/**
 * Settings every package's tests share. Each run also writes a JSON report, which
 * scripts/test-summary.mjs adds up into one closing line for CI.
 */
export function sharedConfig(options: { integration?: boolean } = {}) {
  return defineConfig({
    test: {
      include: ["src/**/*.test.ts"],
      // One report per run (a package may be run twice, in parts: scripts/run-tests.sh).
      reporters: ["default", ["json", { outputFile: `.vitest/results-${process.pid}.json` }]],
      // Other workspace packages come built (test depends on ^build): Node loads their dist directly,
      // as it loads node_modules, instead of Vitest transforming them again for every test file (this
      // halved the time a service's test file takes to start).
      server: { deps: { external: [/\/(packages|services)\/[^/]+\/dist\//] } },
      // Integration tests start real nats-server processes: give them time, and run files one at a
      // time on this 2-core budget so timing assertions (the 3 s deadline) stay meaningful.
      ...(options.integration ? { testTimeout: 30_000, hookTimeout: 30_000, fileParallelism: false } : {}),
    },
  });
}
