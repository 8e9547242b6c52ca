import { describe, expect, test } from "bun:test";
import { nestedDeeperThan } from "../../src/events/json.ts";

/** `depth` levels of arrays and objects, alternating, with a primitive at the bottom. */
function nested(depth: number, leaf: unknown): unknown {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = i % 2 === 0 ? [1, "a", v] : { a: 1, b: null, c: v };
  return v;
}

describe("nestedDeeperThan", () => {
  test("primitives and null are level 0: never too deep", () => {
    for (const v of [null, 1, "x", true, undefined]) expect(nestedDeeperThan(v, 0)).toBe(false);
  });

  test("the boundary, through arrays and objects alike", () => {
    for (const depth of [1, 2, 3, 10, 999, 1000, 1001]) {
      for (const leaf of [0, [], {}]) {
        // An empty array or object at the bottom is a level of its own.
        const levels = depth + (typeof leaf === "object" ? 1 : 0);
        const v = nested(depth, leaf);
        expect(nestedDeeperThan(v, levels)).toBe(false);
        expect(nestedDeeperThan(v, levels - 1)).toBe(true);
      }
    }
  });

  test("the deepest member counts, wherever it is", () => {
    const event = { a: "x", b: [1, 2, { c: [[[]]] }], d: { e: 1 } };
    expect(nestedDeeperThan(event, 6)).toBe(false);
    expect(nestedDeeperThan(event, 5)).toBe(true);
  });
});
