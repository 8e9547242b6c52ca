import { afterAll, beforeAll, expect, test } from "bun:test";
import { Elysia } from "elysia";
import pino from "pino";
import { errorHandler } from "../../src/http/errors.ts";
import { requestObserver } from "../../src/http/observe.ts";
import { basic, startTestServer, storedEvents, type TestServer } from "../support/server.ts";

// What a client reads of each answer, byte for byte: status, body, content-type, the
// request id, the X-RateLimit-* headers of every answer once the key is known (SPEC 3
// and 6), Retry-After on a 429, and the CORS headers for an allowed page. The answers
// of successful requests are built as a ready Response (src/http/observe.ts), the
// others by Elysia: both must carry all of them.

const ORIGIN = "https://shop.example";
const JSON_TYPE = "application/json;charset=utf-8";
const RATE = ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"];
const CORS = {
  "access-control-allow-origin": ORIGIN,
  "access-control-allow-credentials": "true",
  "access-control-expose-headers":
    "X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After",
  vary: "Origin",
};

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({
    web: { allowedOrigins: [ORIGIN], rateLimit: { eventsPerSecond: 1, burst: 1000 } },
  });
});
afterAll(() => s.cleanup());

let n = 0;
const event = () => ({ type: "track", event: "e", userId: "u", messageId: `answer-${++n}` });

/** The answer as the client reads it: headers minus those Bun adds (date, length). */
async function read(res: Response) {
  const headers = Object.fromEntries(
    [...res.headers].filter(([name]) => name !== "date" && name !== "content-length"),
  );
  return { status: res.status, headers, body: await res.text() };
}

function expectRated(headers: Record<string, string>, limit = "1000") {
  expect(headers["x-ratelimit-limit"]).toBe(limit);
  expect(headers["x-ratelimit-remaining"]).toMatch(/^\d+$/);
  expect(headers["x-ratelimit-reset"]).toMatch(/^\d+$/);
  expect(headers["x-request-id"]).toMatch(/^[0-9a-f]{8}-[0-9a-z]+$/);
}

const names = (headers: Record<string, string>) => Object.keys(headers).sort();
const withCors = (...extra: string[]) =>
  [...Object.keys(CORS), ...RATE, "content-type", "x-request-id", ...extra].sort();
const plain = (...extra: string[]) => [...RATE, "content-type", "x-request-id", ...extra].sort();

test("a stored single event: the OK body, its content-type, rate and id headers, CORS for a page", async () => {
  for (const [path, headers] of [
    ["/api/s/track", { "x-write-key": s.keys.browser, origin: ORIGIN }],
    ["/v1/track", basic(s.keys.server)],
  ] as const) {
    const first = event();
    const answers = [
      await read(await s.post(path, first, headers)),
      await read(await s.post(path, first, headers)), // a duplicate: the same answer
    ];
    for (const a of answers) {
      expect(a.status).toBe(200);
      expect(a.body).toBe('{"ok":true,"success":true}');
      expect(a.headers["content-type"]).toBe(JSON_TYPE);
      expectRated(a.headers);
      expect(names(a.headers)).toEqual("origin" in headers ? withCors() : plain());
      if ("origin" in headers) expect(a.headers).toMatchObject(CORS);
    }
    expect(answers[0]!.headers["x-request-id"]).not.toBe(answers[1]!.headers["x-request-id"]);
  }
});

test("a batch: its result as JSON with the same headers", async () => {
  const res = await read(
    await s.post(
      "/v1/batch",
      { batch: [event(), { type: "track" }] },
      {
        ...basic(s.keys.browser),
        origin: ORIGIN,
      },
    ),
  );
  expect(res.status).toBe(200);
  expect(JSON.parse(res.body)).toMatchObject({ success: true, received: 2, accepted: 1 });
  expect(res.body.startsWith('{"success":true,"ok":true,"received":2,')).toBe(true);
  expect(res.headers["content-type"]).toBe(JSON_TYPE);
  expectRated(res.headers);
  expect(names(res.headers)).toEqual(withCors());
});

test("a 400 of a single event and of a batch carries the rate and id headers", async () => {
  const single = await read(
    await s.post("/v1/track", { type: "track", event: 5 }, basic(s.keys.server)),
  );
  const batch = await read(
    await s.post(
      "/v1/batch",
      { batch: [{ type: "nope" }] },
      {
        "x-write-key": s.keys.browser,
        origin: ORIGIN,
      },
    ),
  );
  expect(single.status).toBe(400);
  expect(JSON.parse(single.body).error).toBeString();
  expectRated(single.headers);
  expect(names(single.headers)).toEqual(plain());
  expect(batch.status).toBe(400);
  expect(JSON.parse(batch.body)).toMatchObject({ success: false, accepted: 0 });
  expectRated(batch.headers);
  expect(names(batch.headers)).toEqual(withCors());
  for (const a of [single, batch]) expect(a.headers["content-type"]).toBe(JSON_TYPE);
});

test("a 401 has the request id and no rate headers; an unknown path is a 404 with the id", async () => {
  const unauthorized = await read(await s.post("/v1/track", event(), { "x-write-key": "nope" }));
  expect(unauthorized.status).toBe(401);
  expect(names(unauthorized.headers)).toEqual(["content-type", "x-request-id"]);
  const missing = await read(await s.post("/v1/nothing-here", event()));
  expect(missing.status).toBe(404);
  expect(missing.headers["x-request-id"]).toMatch(/^[0-9a-f]{8}-[0-9a-z]+$/);
});

test("a 429 of a single event and of a batch: Retry-After, the rate headers, CORS; nothing stored", async () => {
  const limited = await startTestServer({
    web: { allowedOrigins: [ORIGIN], rateLimit: { eventsPerSecond: 0.01, burst: 1 } },
  });
  try {
    const key = { "x-write-key": limited.keys.browser, origin: ORIGIN };
    expect((await limited.post("/api/s/track", event(), key)).status).toBe(200);
    const single = await read(await limited.post("/api/s/track", event(), key));
    const batch = await read(await limited.post("/v1/batch", { batch: [event()] }, key));
    for (const a of [single, batch]) {
      expect(a.status).toBe(429);
      expect(JSON.parse(a.body)).toMatchObject({ error: "rate limit exceeded" });
      expect(a.headers["content-type"]).toBe(JSON_TYPE);
      expectRated(a.headers, "1");
      expect(a.headers["x-ratelimit-remaining"]).toBe("0");
      expect(Number(a.headers["retry-after"])).toBeGreaterThanOrEqual(1);
      expect(names(a.headers)).toEqual(withCors("retry-after"));
      expect(a.headers).toMatchObject(CORS);
    }
    expect(await storedEvents(limited.dataDir)).toHaveLength(1);
  } finally {
    await limited.cleanup();
  }
});

// A 200's answer that cannot be serialized (a BigInt, a cycle: a bug of ours) becomes
// a 500 through the error mapper; that answer and its log line still carry the request
// id and the headers set for the request (CORS, X-RateLimit-*), as every other does.
test("a 200 whose JSON cannot be made is a 500 with its request id and headers, logged with the id", async () => {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: "debug" }, { write: (l: string) => lines.push(JSON.parse(l)) });
  const deps = {
    config: { server: { trustProxy: false }, logger: { successSampleRate: 0 } },
    logger,
    lifecycle: { shuttingDown: false },
  } as unknown as Parameters<typeof requestObserver>[0];
  const observe = requestObserver(deps);
  const app = new Elysia()
    .onRequest(observe.begin)
    .onError(errorHandler(deps))
    .mapResponse(observe.end)
    .get("/unserializable", ({ set }) => {
      set.headers["x-ratelimit-limit"] = "10";
      return { n: 1n };
    });
  const res = await app.handle(new Request("http://localhost/unserializable"));
  expect(res.status).toBe(500);
  expect(((await res.json()) as { error: string }).error).toMatch(/internal error$/);
  const id = res.headers.get("x-request-id");
  expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-z]+$/);
  expect(res.headers.get("x-ratelimit-limit")).toBe("10");
  const line = lines.find((l) => l.msg === "request failed: internal error");
  expect(line).toMatchObject({ requestId: id, status: 500, route: "/unserializable" });
});
