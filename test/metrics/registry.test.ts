import { expect, test } from "bun:test";
import { Counter, Gauge, Histogram, Registry } from "../../src/metrics/registry.ts";
import { SluiceMetrics } from "../../src/metrics/sluice.ts";
import { parsePrometheus, sampleValue } from "../ops/prometheus.ts";

test("counters, gauges and histograms render in the text format", () => {
  const r = new Registry();
  const c = r.register(new Counter("t_requests_total", "Requests.", ["route", "status"]));
  const h = r.register(new Histogram("t_seconds", "Latency.", [0.1, 1]));
  r.register(new Gauge("t_up", "Up.", () => 1));
  c.inc(1, "/a", 200);
  c.inc(2, "/a", 200);
  c.inc(1, '/b"\\\n', 404);
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  expect(r.render()).toBe(
    [
      "# HELP t_requests_total Requests.",
      "# TYPE t_requests_total counter",
      't_requests_total{route="/a",status="200"} 3',
      't_requests_total{route="/b\\"\\\\\\n",status="404"} 1',
      "# HELP t_seconds Latency.",
      "# TYPE t_seconds histogram",
      't_seconds_bucket{le="0.1"} 1',
      't_seconds_bucket{le="1"} 2',
      't_seconds_bucket{le="+Inf"} 3',
      "t_seconds_sum 5.55",
      "t_seconds_count 3",
      "# HELP t_up Up.",
      "# TYPE t_up gauge",
      "t_up 1",
      "",
    ].join("\n"),
  );
  const samples = parsePrometheus(r.render());
  expect(sampleValue(samples, "t_requests_total", { route: '/b"\\\n', status: "404" })).toBe(1);
});

test("function runs and errors are counted by function id", () => {
  const m = new SluiceMetrics({ version: "test" });
  m.functionRun("enrich", 12, false);
  m.functionRun("enrich", 30, true);
  m.functionRun("geo", 1, false);
  const s = parsePrometheus(m.render());
  expect(sampleValue(s, "sluice_function_runs_total", { function: "enrich" })).toBe(2);
  expect(sampleValue(s, "sluice_function_errors_total", { function: "enrich" })).toBe(1);
  expect(sampleValue(s, "sluice_function_errors_total", { function: "geo" })).toBe(0);
  expect(sampleValue(s, "sluice_function_duration_seconds_count", { function: "enrich" })).toBe(2);
  expect(
    sampleValue(s, "sluice_function_duration_seconds_sum", { function: "enrich" }),
  ).toBeCloseTo(0.042);
  expect(m.render()).toContain('sluice_function_errors_total{function="geo"} 0');
  expect(sampleValue(s, "sluice_build_info", { version: "test" })).toBe(1);
  expect(sampleValue(s, "process_resident_memory_bytes")).toBeGreaterThan(0);
});

test("a scrape waits for a slow refresher only until its deadline and shows the last values; the refresh's values come with a later scrape", async () => {
  const m = new SluiceMetrics({ version: "test", refreshDeadlineMs: 50 });
  let lag = 3;
  m.connections(() => [
    {
      id: "c1",
      state: "running",
      lag: { events: lag, seconds: 0 },
      lastSuccessAt: null,
      attempts: 0,
      deadLetters: 0,
      retentionHeld: false,
    },
  ]);
  // NATS slow: the refresh ends only when the test says so (without the deadline the
  // scrape would wait for it, and this test would time out).
  let finish = () => {};
  m.beforeScrape(
    () =>
      new Promise<void>((resolve) => {
        finish = () => {
          lag = 8;
          resolve();
        };
      }),
  );
  const first = parsePrometheus(await m.scrape());
  expect(sampleValue(first, "sluice_connection_lag_events", { connection: "c1" })).toBe(3);
  finish();
  const second = parsePrometheus(await m.scrape());
  expect(sampleValue(second, "sluice_connection_lag_events", { connection: "c1" })).toBe(8);
});
