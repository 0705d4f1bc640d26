import { SpanStatusCode, trace } from "@opentelemetry/api";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { afterAll, describe, expect, it } from "vitest";
import { inSpan } from "./in-span.js";
import { startTelemetry } from "./telemetry.js";

describe("in-span", () => {
  const exporter = new InMemorySpanExporter();
  const telemetry = startTelemetry({
    serviceName: "test",
    exportOtlp: false,
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  afterAll(() => telemetry.shutdown());

  it("in-span - work runs with the span active, and the span ends", async () => {
    const active = await inSpan(telemetry.tracer, "ok", {}, async (span) => trace.getActiveSpan() === span);
    expect(active).toBe(true);
    expect(exporter.getFinishedSpans().find((s) => s.name === "ok")?.status.code).toBe(SpanStatusCode.UNSET);
  });

  it("in-span - a throw is recorded as an error on the span and rethrown", async () => {
    await expect(inSpan(telemetry.tracer, "fails", {}, async () => Promise.reject(new Error("boom")))).rejects.toThrow(
      "boom",
    );
    const span = exporter.getFinishedSpans().find((s) => s.name === "fails");
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(span?.events.map((e) => e.name)).toContain("exception");
  });
});
