import type { Msg } from "@nats-io/nats-core";
import { type MuxSubscription, RequestOne } from "@nats-io/nats-core/internal";
import { describe, expect, it, vi } from "vitest";
import "./settled-request-fix.js";

/** What a request needs of the connection's request multiplexer: to forget the request. */
const muxStandIn = () => {
  const mux = { cancel: vi.fn() };
  return { mux, asMux: mux as unknown as MuxSubscription };
};

describe("the settled-request fix of @nats-io/nats-core's RequestOne", () => {
  it("nats - an answered request is resolved and forgotten, with no error built to reject its settled promise", async () => {
    const { mux, asMux } = muxStandIn();
    const request = new RequestOne(asMux, "subject", { timeout: 60_000 });
    const reject = vi.spyOn(request.deferred, "reject");
    const answer = { subject: "reply" } as unknown as Msg;
    request.resolver(null, answer);
    await expect(request.deferred).resolves.toBe(answer);
    expect(reject).not.toHaveBeenCalled();
    expect(mux.cancel).toHaveBeenCalledWith(request);
  });

  it("nats - a request cancelled while it waits is rejected as before (RequestError: cancelled)", async () => {
    const { mux, asMux } = muxStandIn();
    const request = new RequestOne(asMux, "subject", { timeout: 60_000 });
    request.cancel();
    await expect(request.deferred).rejects.toThrow("cancelled");
    expect(mux.cancel).toHaveBeenCalledWith(request);
  });

  it("nats - an error answer still rejects the request with it", async () => {
    const { asMux } = muxStandIn();
    const request = new RequestOne(asMux, "subject", { timeout: 60_000 });
    request.resolver(new Error("no responders"), { subject: "x" } as unknown as Msg);
    await expect(request.deferred).rejects.toThrow("no responders");
  });
});
