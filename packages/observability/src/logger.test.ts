import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "./logger.js";

function capture() {
  const stream = new PassThrough();
  const lines: Record<string, unknown>[] = [];
  stream.on("data", (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line));
  });
  return { stream, lines };
}

describe("logger", () => {
  it("logger - writes one JSON object per line with service, level label and ISO time", async () => {
    const { stream, lines } = capture();
    createLogger({ service: "ingress", level: "info", destination: stream }).info({ seq: 7 }, "stored");
    await expect.poll(() => lines.length).toBe(1);
    expect(lines[0]).toMatchObject({ service: "ingress", level: "info", msg: "stored", seq: 7 });
    expect(String(lines[0]?.time)).toMatch(/^\d{4}-\d{2}-\d{2}T/);
  });

  it("logger - redacts secrets even when a whole object is logged", async () => {
    const { stream, lines } = capture();
    const logger = createLogger({ service: "ingress", level: "info", destination: stream });
    logger.info(
      { config: { verifierTokens: ["s3cret"], token: "t0ken" }, headers: { "intuit-signature": "sig" } },
      "x",
    );
    await expect.poll(() => lines.length).toBe(1);
    const text = JSON.stringify(lines[0]);
    expect(text).not.toMatch(/s3cret|t0ken|"sig"/);
    expect(text).toContain("[redacted]");
  });
});
