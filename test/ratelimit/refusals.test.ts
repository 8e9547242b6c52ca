import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { RefusalLog } from "../../src/ratelimit/refusals.ts";
import { startTestServer } from "../support/server.ts";

test("one line per key and interval, carrying the refusals left unlogged", () => {
  let now = 0;
  const log = new RefusalLog(1000, () => now);
  expect(log.refused("a")).toBe(0);
  expect(log.refused("a")).toBeUndefined();
  expect(log.refused("b")).toBe(0); // keys are apart
  now = 999;
  expect(log.refused("a")).toBeUndefined();
  now = 1000;
  expect(log.refused("a")).toBe(2);
  expect(log.refused("a")).toBeUndefined();
  now = 5000;
  expect(log.refused("a")).toBe(1);
});

test("a storm of 429s: each counted in metrics and logged as a failed request, few warnings, each answered 429", async () => {
  const s = await startTestServer({ web: { rateLimit: { eventsPerSecond: 0.01, burst: 1 } } });
  try {
    const key = { "x-write-key": s.keys.server };
    expect(
      (await s.post("/v1/track", { type: "track", event: "e", userId: "u" }, key)).status,
    ).toBe(200);
    const started = Date.now();
    const answers = await Promise.all(
      Array.from({ length: 50 }, () =>
        s.post("/v1/track", { type: "track", event: "e", userId: "u" }, key),
      ),
    );
    const seconds = (Date.now() - started) / 1000;
    expect(answers.map((r) => r.status)).toEqual(Array(50).fill(429));
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(metrics).toContain(
      'sluice_rate_limited_requests_total{source="web",key="wk_server"} 50',
    );
    const lines = readFileSync(s.logFile, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const limited = lines.filter((l) => l.msg === "rate limited");
    const failed = lines.filter((l) => l.msg === "request failed" && l.status === 429);
    // One line in each second the storm lasted (at least one), not fifty.
    expect(limited.length).toBeGreaterThanOrEqual(1);
    expect(limited.length).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
    // SPEC 10: one line per failed request, each 429 included.
    expect(failed.length).toBe(50);
    expect(limited[0]).toMatchObject({ sourceId: "web", keyId: "wk_server", cost: 1, unlogged: 0 });
    // Each warning's request id is one of a failed request's.
    const failedIds = new Set(failed.map((l) => l.requestId));
    for (const l of limited) expect(failedIds.has(l.requestId)).toBe(true);
  } finally {
    await s.cleanup();
  }
});
