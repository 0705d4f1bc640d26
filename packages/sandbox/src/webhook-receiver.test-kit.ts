import { once } from "node:events";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

export interface Received {
  readonly body: string;
  readonly headers: IncomingHttpHeaders;
  /** Real time of arrival, ms. */
  readonly at: number;
}

export interface Reply {
  readonly status: number;
  /** Real ms to wait before answering. */
  readonly delayMs?: number;
}

/** A webhook endpoint for tests: records every POST and answers as `reply` says (200 by default). */
export async function startReceiver() {
  const received: Received[] = [];
  const state = { reply: (_body: string): Reply => ({ status: 200 }) };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString();
      received.push({ body, headers: req.headers, at: performance.now() });
      const { status, delayMs = 0 } = state.reply(body);
      setTimeout(() => res.writeHead(status).end(), delayMs);
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks`,
    received,
    /** Sets how the endpoint answers from now on. */
    answer(reply: (body: string) => Reply) {
      state.reply = reply;
    },
    /** Bodies parsed as JSON. */
    json(): unknown[] {
      return received.map((r) => JSON.parse(r.body));
    },
    async close() {
      server.closeAllConnections();
      server.close();
    },
  };
}
