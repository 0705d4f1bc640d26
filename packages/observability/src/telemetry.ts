import { type Tracer, trace } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, type SpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";

export interface TelemetryOptions {
  readonly serviceName: string;
  /**
   * Send spans over OTLP; the exporter reads the standard `OTEL_EXPORTER_OTLP_*` variables itself.
   * Without it spans are still made, so trace context still flows through NATS headers.
   */
  readonly exportOtlp: boolean;
  /** Extra processors, e.g. an in-memory exporter in tests. */
  readonly spanProcessors?: readonly SpanProcessor[];
}

export interface Telemetry {
  readonly tracer: Tracer;
  /** Flushes pending spans; call last during shutdown. */
  shutdown(): Promise<void>;
}

/** Registers a global tracer provider with W3C trace-context propagation. */
export function startTelemetry(options: TelemetryOptions): Telemetry {
  const spanProcessors = [...(options.spanProcessors ?? [])];
  if (options.exportOtlp) spanProcessors.push(new BatchSpanProcessor(new OTLPTraceExporter()));
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.serviceName }),
    spanProcessors,
  });
  provider.register();
  return {
    tracer: trace.getTracer(options.serviceName),
    shutdown: async () => {
      await provider.shutdown();
      trace.disable();
    },
  };
}
