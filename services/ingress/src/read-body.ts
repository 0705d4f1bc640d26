import type { IncomingMessage } from "node:http";
import getRawBody from "raw-body";

/**
 * Reads the request's bytes exactly as sent (the signature covers them, so nothing may parse or
 * decode them first), up to `limit` bytes. A body over the limit is refused at once: by its
 * Content-Length before a byte is read, or as soon as a chunked body passes the limit. (Express' own
 * `express.raw` reads a refused body to its end before answering: an unsigned client could make us
 * read 100 MB.) The refusal is raw-body's 413, which the webhook's receiver answers, closing the
 * connection.
 */
export function readBody(limit: number): (req: IncomingMessage) => Promise<Buffer> {
  return (req) => getRawBody(req, { length: req.headers["content-length"] ?? null, limit });
}
