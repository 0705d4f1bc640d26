import { undocumentedVariables } from "@qbo-webhooks/service-kit/testing";
import { describe, expect, it } from "vitest";
import { OrderingEnv } from "./config.js";

describe("ordering config", () => {
  it("config - every variable it reads is in the README's tables", () => {
    expect(undocumentedVariables(OrderingEnv)).toEqual([]);
  });
});
