import { defineConfig } from "vitest/config";

// Integration tests start real nats-server processes; give them time, and run files one at a time
// on this 2-core budget so timing-sensitive assertions (3 s deadlines) stay meaningful.
export default defineConfig({
  test: { testTimeout: 30_000, hookTimeout: 30_000, fileParallelism: false },
});
