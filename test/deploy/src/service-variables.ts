import { IngressEnv } from "@qbo-webhooks/ingress/config";
import { OrderingEnv } from "@qbo-webhooks/ordering/config";
import { ProcessorEnv } from "@qbo-webhooks/processor/config";
import { ReconcilerEnv } from "@qbo-webhooks/reconciler/config";

/** The environment variables each service reads: the keys of its configuration schema. */
export const SERVICE_VARIABLES = {
  ingress: Object.keys(IngressEnv.shape),
  ordering: Object.keys(OrderingEnv.shape),
  processor: Object.keys(ProcessorEnv.shape),
  reconciler: Object.keys(ReconcilerEnv.shape),
};

/** Variables the chart sets for the runtime, not for a service's own configuration. */
export const RUNTIME_VARIABLES = ["NODE_OPTIONS", "MALLOC_ARENA_MAX"];
