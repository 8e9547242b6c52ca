import { afterAll, beforeAll, expect, test } from "bun:test";
import { startTestServer, type TestServer } from "../support/server.ts";
import { waitFor } from "../support/wait.ts";
import { parsePrometheus, type Sample, sampleValue } from "./prometheus.ts";

let s: TestServer;
beforeAll(async () => {
  // Source web: 10 tokens and (practically) no refill, so the 429 below is certain.
  s = await startTestServer({ web: { rateLimit: { eventsPerSecond: 0.001, burst: 10 } } });
});
afterAll(() => s.cleanup());

const track = (messageId: string) => ({ type: "track", event: "Clicked", userId: "u", messageId });

async function scrape(): Promise<{ text: string; samples: Sample[] }> {
  const res = await fetch(`${s.url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toStartWith("text/plain; version=0.0.4");
  const text = await res.text();
  return { text, samples: parsePrometheus(text) };
}

test("/metrics counts requests and events by source after known traffic", async () => {
  const web = { "x-write-key": s.keys.server };
  const statuses = [
    (await s.post("/v1/track", track("m1"), web)).status, // accepted
    (await s.post("/v1/track", track("m1"), web)).status, // duplicate
    // accepted m2, duplicate m1, rejected (no event name)
    (
      await s.post(
        "/v1/batch",
        { batch: [track("m2"), track("m1"), { type: "track", userId: "u" }] },
        web,
      )
    ).status,
    (await s.post("/v1/track", { userId: "u" }, web)).status, // rejected: 400
    // 6 tokens used, 4 left: a batch of 5 is refused whole
    (await s.post("/v1/batch", { batch: [1, 2, 3, 4, 5].map((i) => track(`r${i}`)) }, web)).status,
    (
      await s.post(
        "/v1/identify",
        { userId: "u", messageId: "o1" },
        { "x-write-key": s.keys.other },
      )
    ).status,
    (await fetch(`${s.url}/no/such/path`)).status,
  ];
  expect(statuses).toEqual([200, 200, 200, 400, 429, 200, 404]);

  // Request metrics are recorded just after each response is sent.
  const m = await waitFor(async () => {
    const scraped = await scrape();
    return sampleValue(scraped.samples, "sluice_http_requests_total", notFound) >= 1 && scraped;
  });
  const v = (name: string, labels: Record<string, string> = {}) =>
    sampleValue(m.samples, name, labels);

  expect(v("sluice_events_total", { source: "web", outcome: "accepted" })).toBe(2);
  expect(v("sluice_events_total", { source: "web", outcome: "duplicate" })).toBe(2);
  expect(v("sluice_events_total", { source: "web", outcome: "rejected" })).toBe(2);
  expect(v("sluice_events_total", { source: "web", outcome: "rate_limited" })).toBe(5);
  expect(v("sluice_events_total", { source: "other", outcome: "accepted" })).toBe(1);
  expect(v("sluice_events_total", { source: "other", outcome: "duplicate" })).toBe(0);
  expect(v("sluice_rate_limited_requests_total", { source: "web", key: "wk_server" })).toBe(1);

  const req = (method: string, route: string, status: string) =>
    v("sluice_http_requests_total", { method, route, status });
  expect(req("POST", "/v1/track", "200")).toBe(2);
  expect(req("POST", "/v1/track", "400")).toBe(1);
  expect(req("POST", "/v1/batch", "200")).toBe(1);
  expect(req("POST", "/v1/batch", "429")).toBe(1);
  expect(req("POST", "/v1/identify", "200")).toBe(1);
  expect(req("GET", "unmatched", "404")).toBe(1);
  expect(
    v("sluice_http_request_duration_seconds_count", { method: "POST", route: "/v1/track" }),
  ).toBe(3);
  expect(
    v("sluice_http_request_duration_seconds_bucket", {
      method: "POST",
      route: "/v1/track",
      le: "+Inf",
    }),
  ).toBe(3);

  // Three events were stored, in at most three group commits.
  expect(v("sluice_log_flushed_records_total")).toBe(3);
  const flushes = v("sluice_log_flush_duration_seconds_count");
  expect(flushes).toBeGreaterThanOrEqual(1);
  expect(flushes).toBeLessThanOrEqual(3);
  expect(v("sluice_log_segments")).toBe(1);
  expect(v("sluice_log_bytes")).toBeGreaterThan(0);
  // The three stored events' keys are in the dedup window.
  expect(v("sluice_dedup_keys")).toBe(3);
  expect(v("sluice_dedup_memory_bytes")).toBeGreaterThan(0);
  expect(v("process_resident_memory_bytes")).toBeGreaterThan(0);
  expect(v("sluice_memory_bytes", { kind: "heap_used" })).toBeGreaterThan(0);

  // Labels carry ids, never keys.
  for (const key of Object.values(s.keys)) {
    expect(m.text).not.toContain(key);
    expect(m.text).not.toContain(key.split(":")[1]!);
  }
});

const notFound = { method: "GET", route: "unmatched", status: "404" };
