import { type Context, context, propagation, type TextMapGetter, type TextMapSetter } from "@opentelemetry/api";

/** The part of NATS `MsgHdrs` (and of any header map) that trace propagation needs. */
export interface HeaderCarrier {
  get(key: string): string;
  set(key: string, value: string): void;
}

const setter: TextMapSetter<HeaderCarrier> = { set: (carrier, key, value) => carrier.set(key, value) };
const getter: TextMapGetter<HeaderCarrier> = {
  get: (carrier, key) => carrier.get(key) || undefined,
  keys: () => ["traceparent", "tracestate", "baggage"],
};

/** Writes the current (or given) trace context into message headers, so the next service continues the trace. */
export function injectTraceContext(headers: HeaderCarrier, from: Context = context.active()): void {
  propagation.inject(from, headers, setter);
}

/** The trace context a message carries, to start the consuming span as its child. */
export function extractTraceContext(headers: HeaderCarrier, into: Context = context.active()): Context {
  return propagation.extract(into, headers, getter);
}
