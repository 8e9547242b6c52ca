/**
 * Experiment (issue 14): the cost of one request's metrics with sluice's registry and
 * with prom-client, which is not a dependency: `npm install --no-save prom-client@15`
 * first, then `bun bench/experiments/metrics-registry.ts [requests]`. One request is
 * what SluiceMetrics records for it: a counter with 3 labels, a histogram with 2, and
 * the events counter with 2.
 */
import { Counter, Histogram, Registry } from "../../src/metrics/registry.ts";

const N = Number(process.argv[2] ?? 1_000_000);
const ROUTES = ["/v1/batch", "/v1/track", "/v1/page", "/health"];
const METHODS = ["POST", "GET"];
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

type Record3 = (method: string, route: string, seconds: number) => void;

function measure(name: string, record: Record3): void {
  for (let round = 1; round <= 3; round++) {
    const start = Bun.nanoseconds();
    for (let i = 0; i < N; i++) record(METHODS[i & 1]!, ROUTES[i & 3]!, (i % 100) / 10_000);
    console.log(
      `${name}, round ${round}: ${((Bun.nanoseconds() - start) / N).toFixed(0)} ns/request`,
    );
  }
}

const r = new Registry();
const requests = r.register(new Counter("req_total", "x", ["method", "route", "status"]));
const seconds = r.register(new Histogram("req_seconds", "x", BUCKETS, ["method", "route"]));
const events = r.register(new Counter("events_total", "x", ["source", "outcome"]));
measure("sluice registry", (method, route, s) => {
  requests.inc(1, method, route, 200);
  seconds.observe(s, method, route);
  events.inc(5, "web", "accepted");
});

const name = "prom-client";
const client = await import(name).catch(() => undefined);
if (!client) {
  console.log("prom-client is not installed: npm install --no-save prom-client@15");
} else {
  const { Counter: C, Histogram: H, Registry: R } = client.default ?? client;
  const reg = new R();
  const pc = new C({
    name: "req_total",
    help: "x",
    labelNames: ["method", "route", "status"],
    registers: [reg],
  });
  const ph = new H({
    name: "req_seconds",
    help: "x",
    labelNames: ["method", "route"],
    buckets: BUCKETS,
    registers: [reg],
  });
  const pe = new C({
    name: "events_total",
    help: "x",
    labelNames: ["source", "outcome"],
    registers: [reg],
  });
  measure("prom-client", (method, route, s) => {
    pc.inc({ method, route, status: 200 }, 1);
    ph.observe({ method, route }, s);
    pe.inc({ source: "web", outcome: "accepted" }, 5);
  });
}
