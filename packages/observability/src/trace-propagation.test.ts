import { context, trace } from "@opentelemetry/api";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { afterAll, describe, expect, it } from "vitest";
import { startTelemetry } from "./telemetry.js";
import { extractTraceContext, injectTraceContext } from "./trace-propagation.js";

class MapCarrier {
  readonly values = new Map<string, string>();
  get(key: string) {
    return this.values.get(key) ?? "";
  }
  set(key: string, value: string) {
    this.values.set(key, value);
  }
}

describe("trace-propagation", () => {
  const exporter = new InMemorySpanExporter();
  const telemetry = startTelemetry({
    serviceName: "test",
    exportOtlp: false,
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  afterAll(() => telemetry.shutdown());

  it("trace-propagation - a consumer's span continues the producer's trace through headers", () => {
    const headers = new MapCarrier();
    const producer = telemetry.tracer.startSpan("publish");
    context.with(trace.setSpan(context.active(), producer), () => injectTraceContext(headers));
    producer.end();
    expect(headers.get("traceparent")).toContain(producer.spanContext().traceId);

    const consumer = telemetry.tracer.startSpan("consume", {}, extractTraceContext(headers));
    consumer.end();
    expect(consumer.spanContext().traceId).toBe(producer.spanContext().traceId);
    const finished = exporter.getFinishedSpans().find((span) => span.name === "consume");
    expect(finished?.parentSpanContext?.spanId).toBe(producer.spanContext().spanId);
  });
});
