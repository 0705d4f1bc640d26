import { randomInt } from "node:crypto";
import { createServer } from "node:net";

// `npm start`'s own ports (scripts/start-local.mjs), before LOCAL_PORT_OFFSET moves them: NATS and its
// monitoring, the ingress, the sandbox, the reconciler, and the ops ports of up to three processors.
const START_PORTS = [4222, 8222, 8080, 8090, 8083, 9090, 9091, 9092, 9093, 9094, 9095];

/**
 * A LOCAL_PORT_OFFSET for a test that runs `npm start`: below the ephemeral range, where the free ports of
 * the tests beside it come from, and with every port it moves free right now (another suite's `npm start`
 * may hold an offset of its own).
 */
export async function quietPortOffset(): Promise<number> {
  for (;;) {
    const offset = 10_000 + randomInt(0, 90) * 100;
    const free = await Promise.all(START_PORTS.map((port) => isFree(port + offset)));
    if (free.every(Boolean)) return offset;
  }
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
}
