import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { basic, startTestServer, storedEvents, type TestServer } from "../support/server.ts";

/**
 * A bounded fuzz of every route the app serves (issue 13): random methods' bodies,
 * content types, encodings, credentials and path parameters, each mutated from what a
 * real client sends. Whatever arrives, the server answers below 500 with a JSON
 * `error` that never echoes a write key, keeps serving, logs no key, and stores only
 * events that came with a valid key. The seed is fixed (printed on failure), so a
 * failure is reproducible: `FUZZ_SEED=n bun test test/http/fuzz.test.ts`.
 */

const SEED = Number(process.env.FUZZ_SEED ?? 20261202);
const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 1500);

/** mulberry32: small, seedable, good enough to pick cases. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = prng(SEED);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const chance = (p: number) => random() < p;

const STRANGE_STRINGS = [
  "",
  "__proto__",
  "constructor",
  "prototype",
  "x".repeat(101),
  "x".repeat(40_000),
  "é\u0000\uffff😀",
  "\ud800",
  "2020-02-30T00:00:00Z",
  "0000-01-01T00:00:00Z",
  "9999-12-31T23:59:59.999Z",
  "../../etc/passwd",
  "%00%2e%2e",
  "<script>alert(1)</script>",
  "' OR 1=1 --",
];

function deep(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = chance(0.5) ? [v] : { a: v };
  return v;
}

function randomValue(depth = 0): unknown {
  switch (Math.floor(random() * 10)) {
    case 0:
      return null;
    case 1:
      return pick([0, -1, 1.5, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2]);
    case 2:
      return chance(0.5);
    case 3:
      return pick(STRANGE_STRINGS);
    case 4:
      return depth < 3 ? [randomValue(depth + 1), randomValue(depth + 1)] : [];
    case 5:
      return depth < 3 ? { [pick(STRANGE_STRINGS)]: randomValue(depth + 1) } : {};
    case 6:
      return deep(pick([10, 900, 1100, 5000]));
    default:
      return `v${Math.floor(random() * 1e6)}`;
  }
}

let counter = 0;
function validEvent(): Record<string, unknown> {
  counter++;
  return {
    type: pick(["track", "page", "identify", "screen", "group", "alias"]),
    event: "Fuzzed",
    messageId: `fuzz-${SEED}-${counter}`,
    userId: "u1",
    anonymousId: "a1",
    previousId: "p1",
    groupId: "g1",
    properties: { n: counter },
    timestamp: new Date().toISOString(),
  };
}

/** A real client's event with a few fields replaced, removed or added at random. */
function mutatedEvent(): unknown {
  const e: Record<string, unknown> = validEvent();
  const fields = [...Object.keys(e), "context", "traits", "integrations", "writeKey", "sentAt"];
  const edits = Math.floor(random() * 3);
  for (let i = 0; i < edits; i++) {
    const f = pick(fields);
    if (chance(0.3)) delete e[f];
    else e[f] = randomValue();
  }
  return chance(0.05) ? randomValue() : e;
}

function body(keys: string[]): { raw: string | Uint8Array; type?: string; encoding?: string } {
  const shape = Math.floor(random() * 12);
  let json: string;
  if (shape < 5) json = JSON.stringify(mutatedEvent());
  else if (shape < 8) {
    const batch: Record<string, unknown> = {
      batch: Array.from({ length: Math.floor(random() * 6) }, mutatedEvent),
    };
    if (chance(0.2)) batch.writeKey = chance(0.5) ? pick(keys) : "wk_nope";
    if (chance(0.1)) batch.batch = randomValue();
    json = JSON.stringify(batch);
  } else if (shape === 8) json = JSON.stringify(mutatedEvent()).slice(0, -3);
  else if (shape === 9) json = pick(["", "null", "[]", "1", '"x"', "{", "{}}", "\u0000"]);
  else if (shape === 10) json = JSON.stringify({ writeKey: pick(keys), ...validEvent() });
  else json = "x".repeat(pick([10, 70_000, 600_000]));
  const type = pick([
    "application/json",
    "application/json",
    "text/plain",
    "application/json; charset=utf-8",
    "application/json; charset=utf-16",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    undefined,
  ]);
  const enc = Math.floor(random() * 8);
  if (enc === 0) return { raw: gzipSync(json), type, encoding: "gzip" };
  if (enc === 1)
    return { raw: new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3]), type, encoding: "gzip" };
  if (enc === 2) return { raw: json, type, encoding: pick(["br", "deflate", "identity, gzip"]) };
  if (enc === 3) return { raw: new Uint8Array([0xff, 0xfe, 0xc3, 0x28, 0x7b]), type };
  return { raw: json, type };
}

function credentials(keys: string[]): { headers: Record<string, string>; query: string } {
  const key = chance(0.7) ? pick(keys) : pick(["wk_nope", "", "x".repeat(5000), "é", "a:b"]);
  switch (Math.floor(random() * 7)) {
    case 0:
      return { headers: basic(key), query: "" };
    case 1:
      return { headers: { authorization: `Bearer ${key}` }, query: "" };
    case 2:
      return { headers: { "x-write-key": key }, query: "" };
    case 3:
      return { headers: {}, query: `?writeKey=${encodeURIComponent(key)}` };
    case 4:
      return {
        headers: { authorization: pick(["Basic", "Basic !!!", "Digest x", "Bearer"]) },
        query: "",
      };
    default:
      return { headers: {}, query: "" };
  }
}

/** Percent-encodes; a lone surrogate becomes bytes that are not UTF-8 (%ED%A0%80). */
function encodePart(value: string): string {
  try {
    return encodeURIComponent(value);
  } catch {
    return "%ED%A0%80";
  }
}

function fillPath(pattern: string, keys: string[]): string {
  return pattern
    .replace(/\/\*$/, `/${pick(["x", "a/b", "%2e%2e"])}`)
    .replace(/:([A-Za-z0-9_]+)/g, (_, name: string) =>
      name === "writeKey" && chance(0.6) ? pick(keys) : encodePart(pick(STRANGE_STRINGS) || "x"),
    );
}

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({
    web: { allowedOrigins: ["https://example.com"] },
  });
});
afterAll(() => s.cleanup());

test(`every route, ${REQUESTS} fuzzed requests (seed ${SEED}): no 5xx, no key echoed, still serving`, async () => {
  const keys = [s.keys.browser, s.keys.server, s.keys.other];
  // Every form a key travels in: whole, its secret alone, percent-encoded (a query
  // string), and as Basic auth's base64 (`key:`).
  const forms = keys.flatMap((k) => [
    k,
    k.slice(k.indexOf(":") + 1),
    encodeURIComponent(k),
    Buffer.from(`${k}:`).toString("base64"),
  ]);
  /** The form of a key found in `text`, unless it is part of `allowed` (what was asked for). */
  const leakedKey = (text: string, allowed = "") =>
    forms.find((f) => text.includes(f) && !allowed.includes(f));
  const routes = s.routes().filter((r) => r.method !== "OPTIONS" && !r.path.includes("/live"));
  expect(routes.length).toBeGreaterThan(30);
  const failures: string[] = [];
  const seenStatus = new Map<number, number>();
  for (let i = 0; i < REQUESTS; i++) {
    const route = pick(routes);
    const method = route.method === "ALL" ? pick(["GET", "POST"]) : route.method;
    const { headers, query } = credentials(keys);
    const b = method === "GET" || method === "HEAD" ? undefined : body(keys);
    if (b?.type) headers["content-type"] = b.type;
    if (b?.encoding) headers["content-encoding"] = b.encoding;
    if (chance(0.2)) headers.origin = pick(["https://example.com", "https://evil.example", "null"]);
    const path = fillPath(route.path, keys);
    const what = `#${i} ${method} ${route.path} (${path.slice(0, 80)})`;
    let res: Response;
    try {
      res = await fetch(`${s.url}${path}${query}`, {
        method,
        headers,
        body: b?.raw,
        signal: AbortSignal.timeout(15_000),
      });
    } catch (err) {
      failures.push(`${what}: no answer (${(err as Error).message})`);
      break;
    }
    seenStatus.set(res.status, (seenStatus.get(res.status) ?? 0) + 1);
    const text = await res.text();
    if (res.status >= 500) failures.push(`${what}: ${res.status} ${text.slice(0, 200)}`);
    // Segment's settings carry the key they were asked for (`Segment.io.apiKey`): the
    // SDK needs it. Any other key in any other answer is a leak.
    const asked = res.status === 200 && route.path.endsWith("/settings") ? path : "";
    const leaked = leakedKey(text, asked);
    if (leaked) failures.push(`${what}: the answer holds a write key (${leaked})`);
    if (res.status >= 400 && res.headers.get("content-type")?.includes("json")) {
      const parsed = JSON.parse(text) as { error?: unknown };
      if (typeof parsed.error !== "string") failures.push(`${what}: ${res.status} without error`);
    }
    if (failures.length > 10) break;
  }
  expect(failures).toEqual([]);
  // The fuzz reached past authentication, not just 401s.
  expect(seenStatus.get(200) ?? 0).toBeGreaterThan(20);
  expect(seenStatus.get(400) ?? 0).toBeGreaterThan(20);

  const health = await fetch(`${s.url}/health`);
  expect(health.status).toBe(200);
  const ready = await fetch(`${s.url}/ready`);
  expect(ready.status).toBe(200);
  const ok = await s.post("/v1/track", { ...validEvent(), type: "track" }, basic(s.keys.server));
  expect(ok.status).toBe(200);

  expect(leakedKey(readFileSync(s.logFile, "utf8"))).toBeUndefined();
  // Only what a real key sent is stored, each stored event carries a source it was sent to.
  for (const e of await storedEvents(s.dataDir)) {
    expect(["web", "other"]).toContain(e.sourceId as string);
    expect(JSON.stringify(e)).not.toContain("wk_nope");
    expect(leakedKey(JSON.stringify(e))).toBeUndefined();
  }
}, 240_000);
