import { createHistogram, type RecordableHistogram } from "node:perf_hooks";
import { sampleCloudEventBody } from "@qbo-webhooks/contracts/testing";
import { Pool } from "undici";

export interface Request {
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** The same unsigned one-change notification every time: what the CPU floors, which verify nothing, are posted. */
export function oneChangeNotification(): () => Request {
  const body = sampleCloudEventBody(1, { realmId: "1000001" });
  return () => ({ path: "/webhooks/quickbooks", headers: { "content-type": "application/json" }, body });
}

export interface LoadResult {
  readonly seconds: number;
  readonly sent: number;
  readonly ok: number;
  readonly non200: number;
  readonly errors: number;
  /** Answered after QuickBooks' 3 s budget, or not at all within it. */
  readonly over3s: number;
  /** Latency in nanoseconds. */
  readonly latency: RecordableHistogram;
}

const BUDGET_MS = 3000;

/** A pool of keep-alive HTTP/1.1 connections to `origin`; requests beyond `connections` queue. */
export function createPool(origin: string, connections: number): Pool {
  return new Pool(origin, { connections, pipelining: 1, headersTimeout: BUDGET_MS, bodyTimeout: BUDGET_MS });
}

class Recorder {
  readonly latency = createHistogram();
  sent = 0;
  ok = 0;
  non200 = 0;
  errors = 0;
  over3s = 0;

  async send(pool: Pool, request: Request, since: number): Promise<void> {
    this.sent++;
    try {
      const response = await pool.request({ method: "POST", ...request });
      await response.body.dump();
      if (response.statusCode === 200) this.ok++;
      else this.non200++;
    } catch {
      this.errors++;
    }
    const ms = performance.now() - since;
    if (ms > BUDGET_MS) this.over3s++;
    this.latency.record(Math.max(1, Math.round(ms * 1e6)));
  }

  result(seconds: number): LoadResult {
    const { sent, ok, non200, errors, over3s, latency } = this;
    return { seconds, sent, ok, non200, errors, over3s, latency };
  }
}

/** `concurrency` clients, each sending its next request when the last is answered: the saturation throughput. */
export async function closedLoop(
  pool: Pool,
  concurrency: number,
  seconds: number,
  next: () => Request,
): Promise<LoadResult> {
  const recorder = new Recorder();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const client = async () => {
    while (performance.now() < deadline) await recorder.send(pool, next(), performance.now());
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  return recorder.result((performance.now() - started) / 1000);
}

/**
 * Requests at a fixed rate, evenly spaced, whether or not earlier ones were answered; latency
 * counts from when each request was due, so a stall shows in full (no coordinated omission).
 */
export async function openLoop(pool: Pool, rate: number, seconds: number, next: () => Request): Promise<LoadResult> {
  const recorder = new Recorder();
  const started = performance.now();
  const total = Math.round(rate * seconds);
  const inFlight: Promise<void>[] = [];
  for (let issued = 0; issued < total; ) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate) + 1);
    for (; issued < due; issued++) {
      inFlight.push(recorder.send(pool, next(), started + (issued / rate) * 1000));
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(inFlight);
  return recorder.result((performance.now() - started) / 1000);
}
