// A processor process with a fault at the worst moment, for tests that kill or starve it for real:
// between a change's publication (feed, then delivery queue) and its recording in our copy.
//   FAULT=hold          waits HOLD_MS there, widening the window a kill -9 must hit;
//   FAULT=pubacks-lost  fails each change's first pass there with PUBLISH_TIMEOUT, as when the
//                       stream stored the message but its PubAck never came back.
import { PublishError } from "@qbo-webhooks/messaging";
import { loadEnv } from "@qbo-webhooks/service-kit";
import { runService } from "@qbo-webhooks/service-kit/run-service";
import { z } from "zod";
import { changeMsgId } from "../change-outputs.js";
import { loadConfig } from "../config.js";
import { startProcessor } from "../processor-service.js";
import type { ProcessorHooks } from "../realm-batch.js";

const FaultEnv = z.object({
  FAULT: z.enum(["hold", "pubacks-lost"]),
  HOLD_MS: z.coerce.number().int().positive().default(60_000),
});

const fault = loadEnv(FaultEnv, process.env);
const failed = new Set<string>();

const hooks: ProcessorHooks = {
  batchStarted: () => undefined,
  batchEnded: () => undefined,
  published: async (change) => {
    if (fault.FAULT === "hold") {
      // Said on stderr so that the test kills this process inside the window, not before it.
      process.stderr.write(`published ${changeMsgId(change)}; holding\n`);
      await new Promise((resolve) => setTimeout(resolve, fault.HOLD_MS));
      return;
    }
    const id = changeMsgId(change);
    if (failed.has(id)) return;
    failed.add(id);
    throw new PublishError("PUBLISH_TIMEOUT", `fault injected: no PubAck for ${id}`);
  },
};

await runService({ name: "processor", loadConfig, start: (config, logger) => startProcessor(config, logger, hooks) });
