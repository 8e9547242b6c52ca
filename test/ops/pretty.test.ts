import { expect, test } from "bun:test";
import { createLogger } from "../../src/logger.ts";
import { formatPretty, prettyStream } from "../../src/logger-pretty.ts";

test("pretty lines: time, level, message, then key=value; an error's stack below", () => {
  const line = JSON.stringify({
    level: 40,
    time: "2026-01-02T03:04:05.678Z",
    app: "sluice",
    msg: "rate limited",
    sourceId: "web",
    reason: "two words",
    sources: ["a"],
    err: { type: "Error", message: "boom", stack: "Error: boom\n    at x (y.ts:1:1)" },
  });
  expect(formatPretty(line, false)).toBe(
    '03:04:05.678 WARN  rate limited sourceId=web reason="two words" sources=["a"]\n' +
      "    Error: boom\n        at x (y.ts:1:1)\n",
  );
  expect(formatPretty(line, true)).toContain("\x1b[33mWARN ");
  expect(formatPretty("not json", false)).toBe("not json\n");
});

test("the logger writes pretty lines through the stream, with redaction still applied", () => {
  const out: string[] = [];
  const logger = createLogger(
    "info",
    prettyStream((t) => out.push(t), false),
  );
  logger.info({ headers: { authorization: "Bearer k:secret" }, keyId: "k" }, "hello");
  expect(out).toHaveLength(1);
  expect(out[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}hello headers=/);
  expect(out[0]).not.toContain("secret");
  expect(out[0]).toContain("keyId=k");
});
