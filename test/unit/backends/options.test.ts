/** The option helpers every backend shares (src/backends/options.ts). */
import { describe, expect, it } from "vitest";
import { checkAllowed, parseBool, parseCommon, parseReadOnly } from "../../../src/backends/options.ts";

describe("option helpers", () => {
  it("reads booleans, empty meaning true", () => {
    expect(parseBool("ro", "", false)).toBe(true);
    expect(parseBool("ro", "no", true)).toBe(false);
    expect(parseBool("ro", undefined, true)).toBe(true);
  });

  it("reads ro for the volume's bind mount: -o ro alone means read-only", () => {
    expect(parseReadOnly({ ro: "" })).toBe(true);
    expect(parseReadOnly({})).toBe(false);
    expect(() => parseReadOnly({ ro: "maybe" })).toThrow(
      'option ro="maybe" is not a boolean: use true or false',
    );
  });

  it("lists allowed options in the error", () => {
    expect(() => checkAllowed("x", { a: "1", evil: "2" }, ["a", "b"])).toThrow(
      'option "evil" not allowed for backend x; allowed: a, b',
    );
  });

  it("parses common options with safe defaults", () => {
    expect(parseCommon({})).toEqual({ create: false, allowOther: true });
    expect(parseCommon({ uid: "1000", umask: "22" })).toMatchObject({ uid: 1000 });
    expect(() => parseCommon({ umask: "999" })).toThrow(/octal/);
    expect(() => parseCommon({ uid: "-1" })).toThrow(/whole number/);
  });
});
