import type { BenchKeys } from "./lib/servers.ts";

/** One load shape, run against sluice and against its baseline with the same wrk script. */
export interface Scenario {
  name: string;
  /** What the row measures, for the table. */
  title: string;
  path: string;
  /** events.lua mode and events per request. */
  mode: "single" | "batch" | "dup" | "gzip";
  size: number;
  connections: number;
  headers(keys: BenchKeys): Record<string, string>;
  baseline: "single" | "batch";
  /** The status every measured sluice request should get. */
  expect: 200 | 429;
  /** Needs `POST /api/funcs/:conId`; skipped (reported pending) until the route exists. */
  functions?: boolean;
}

const json = { "Content-Type": "application/json" };
const basic = (key: string) => `Basic ${Buffer.from(`${key}:`).toString("base64")}`;

/** Concurrency: enough for group commit to share flushes, as many clients would. */
const SINGLE_CONNECTIONS = 64;
const BATCH_CONNECTIONS = 16;

export const SCENARIOS: Scenario[] = [
  {
    name: "track",
    title: "single event, POST /api/s/track, X-Write-Key (browser key)",
    path: "/api/s/track",
    mode: "single",
    size: 1,
    connections: SINGLE_CONNECTIONS,
    headers: (k) => ({ ...json, "X-Write-Key": k.browser }),
    baseline: "single",
    expect: 200,
  },
  {
    name: "v1-track",
    title: "single event, POST /v1/track, Basic auth (server key)",
    path: "/v1/track",
    mode: "single",
    size: 1,
    connections: SINGLE_CONNECTIONS,
    headers: (k) => ({ ...json, Authorization: basic(k.server) }),
    baseline: "single",
    expect: 200,
  },
  {
    name: "batch-100",
    title: "POST /v1/batch, 100 events",
    path: "/v1/batch",
    mode: "batch",
    size: 100,
    connections: BATCH_CONNECTIONS,
    headers: (k) => ({ ...json, Authorization: basic(k.server) }),
    baseline: "batch",
    expect: 200,
  },
  {
    name: "batch-500",
    title: "POST /v1/batch, 500 events",
    path: "/v1/batch",
    mode: "batch",
    size: 500,
    connections: BATCH_CONNECTIONS,
    headers: (k) => ({ ...json, Authorization: basic(k.server) }),
    baseline: "batch",
    expect: 200,
  },
  {
    name: "gzip-500",
    title: "POST /v1/batch, 500 events, Content-Encoding: gzip",
    path: "/v1/batch",
    mode: "gzip",
    size: 500,
    connections: BATCH_CONNECTIONS,
    headers: (k) => ({ ...json, "Content-Encoding": "gzip", Authorization: basic(k.server) }),
    baseline: "batch",
    expect: 200,
  },
  {
    name: "dup-500",
    title: "POST /v1/batch, 500 events, half of them already stored",
    path: "/v1/batch",
    mode: "dup",
    size: 500,
    connections: BATCH_CONNECTIONS,
    headers: (k) => ({ ...json, Authorization: basic(k.server) }),
    baseline: "batch",
    expect: 200,
  },
  {
    name: "rate-limited",
    title: "single event over the source's rate limit (429 path)",
    path: "/api/s/track",
    mode: "single",
    size: 1,
    connections: SINGLE_CONNECTIONS,
    headers: (k) => ({ ...json, "X-Write-Key": k.limited }),
    baseline: "single",
    expect: 429,
  },
  {
    name: "funcs",
    title: "POST /api/funcs/con_bench, one pass-through function",
    path: "/api/funcs/con_bench",
    mode: "single",
    size: 1,
    connections: SINGLE_CONNECTIONS,
    headers: (k) => ({ ...json, "X-Write-Key": k.server }),
    baseline: "single",
    expect: 200,
    functions: true,
  },
];
