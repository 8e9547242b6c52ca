import { expect, test } from "bun:test";
import { DEFAULT_TTL_SECONDS, parseTtl } from "../../src/functions/ttl.ts";

test("ttl forms: seconds, units, inf, and the 31-day default", () => {
  expect(parseTtl(undefined)).toBe(31 * 86_400);
  expect(DEFAULT_TTL_SECONDS).toBe(31 * 86_400);
  expect(parseTtl(90)).toBe(90);
  expect(parseTtl("90")).toBe(90);
  expect(parseTtl("30s")).toBe(30);
  expect(parseTtl("15m")).toBe(900);
  expect(parseTtl("2h")).toBe(7200);
  expect(parseTtl("7d")).toBe(7 * 86_400);
  expect(parseTtl("inf")).toBeNull();
  expect(parseTtl(Number.POSITIVE_INFINITY)).toBeNull();
});

test("a ttl that is not a positive duration is refused", () => {
  for (const bad of [0, -5, "0s", "-1", "soon", "7 days", Number.NaN, {}, null]) {
    expect(() => parseTtl(bad)).toThrow(TypeError);
  }
});
