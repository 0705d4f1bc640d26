import { describe, expect, it } from "vitest";
import { isSignedByIntuit, signIntuitPayload } from "./intuit-signature.js";

// Test vectors from Intuit's SDKs, recomputed independently (QBO.md §2).
const JAVA_SDK = {
  token: "b5771f19b12ddb4bcdb9f08bdc50bc63878a",
  body: '{"eventNotifications":[{"realmId":"1185883450","dataChangeEvent":{"entities":[{"name":"Customer","id":"1","operation":"Create","lastUpdated":"2015-10-05T14:42:19-0700"}]}}]}',
  signature: "JC2GUwciPmRBwEO7WvrRmKqu9tGOKL8FFallocTFi8Q=",
};
const DOTNET_SDK = {
  token: "00faeec4-08d0-4996-bb37-698ae19f0149",
  body: '{"eventNotifications":[{"realmId":"1269959970","dataChangeEvent":{"entities":[{"name":"Vendor","id":"40","operation":"Update","lastUpdated":"2016-10-05T03:09:04.000Z"},{"name":"Customer","id":"43","operation":"Create","lastUpdated":"2016-10-05T03:07:04.000Z"}]}}]}',
  signature: "6q+xGyMirJupwKTh2/WBl2NcdxzxqdIbk3sneKTxLWM=",
};
const bytes = (text: string) => Buffer.from(text, "utf8");

describe("intuit-signature", () => {
  it.each([
    ["Java SDK", JAVA_SDK],
    ["DotNet SDK", DOTNET_SDK],
  ])("intuit-signature - accepts the %s test vector", (_name, vector) => {
    expect(isSignedByIntuit(bytes(vector.body), vector.signature, [vector.token])).toBe(true);
    expect(signIntuitPayload(vector.body, vector.token)).toBe(vector.signature);
  });

  it("intuit-signature - the Java vector's body is the 173 bytes QBO.md records", () => {
    expect(bytes(JAVA_SDK.body)).toHaveLength(173);
  });

  it("intuit-signature - rejects the signature 1234, as Intuit's SDK test does", () => {
    expect(isSignedByIntuit(bytes(JAVA_SDK.body), "1234", [JAVA_SDK.token])).toBe(false);
  });

  it("intuit-signature - rejects a signature made with another token", () => {
    expect(isSignedByIntuit(bytes(JAVA_SDK.body), JAVA_SDK.signature, [DOTNET_SDK.token])).toBe(false);
  });

  it("intuit-signature - accepts the second token of a rotation", () => {
    expect(isSignedByIntuit(bytes(JAVA_SDK.body), JAVA_SDK.signature, ["old-token", JAVA_SDK.token])).toBe(true);
  });

  it.each([undefined, ""])("intuit-signature - rejects a missing signature (%s)", (signature) => {
    expect(isSignedByIntuit(bytes(JAVA_SDK.body), signature, [JAVA_SDK.token])).toBe(false);
  });

  it("intuit-signature - verifies the exact bytes: whitespace signed as sent passes, re-serialised JSON fails", () => {
    const spaced = JAVA_SDK.body.replace('{"eventNotifications":', '{ "eventNotifications" : ');
    const signature = signIntuitPayload(spaced, JAVA_SDK.token);
    expect(isSignedByIntuit(bytes(spaced), signature, [JAVA_SDK.token])).toBe(true);
    const reserialised = JSON.stringify(JSON.parse(spaced));
    expect(isSignedByIntuit(bytes(reserialised), signature, [JAVA_SDK.token])).toBe(false);
  });

  it("intuit-signature - rejects a body changed after signing", () => {
    const tampered = JAVA_SDK.body.replace('"id":"1"', '"id":"2"');
    expect(isSignedByIntuit(bytes(tampered), JAVA_SDK.signature, [JAVA_SDK.token])).toBe(false);
  });
});
