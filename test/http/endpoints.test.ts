import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { generateWriteKey, hashWriteKey } from "../../src/auth/keys.ts";
import { EVENT_TYPES } from "../../src/events/schema.ts";
import { startTestServer, type TestServer } from "../support/server.ts";
import {
  ENDPOINTS,
  expectAccepted,
  expectError,
  keyFor,
  newId,
  payloadType,
  sampleEvent,
  send,
  storedType,
  storedWithId,
} from "./table.ts";

const ALLOWED = "https://example.com";
const FOREIGN = "https://evil.example";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ web: { allowedOrigins: [ALLOWED] } });
});
afterAll(() => s.cleanup());

for (const ep of ENDPOINTS) {
  describe(`POST ${ep.path}`, () => {
    const expectation = ep.pathType
      ? `stores a ${ep.pathType} event whatever type the payload says`
      : "stores the event with the payload's type";
    test(expectation, async () => {
      const id = newId(ep.path);
      const res = await send(s, ep, sampleEvent(id, payloadType(ep)), { key: keyFor(s, ep) });
      await expectAccepted(res, ep);
      expect(await storedWithId(s, id)).toMatchObject([{ type: storedType(ep), sourceId: "web" }]);
    });

    test("OPTIONS answers a preflight from an allowed origin with CORS headers", async () => {
      const res = await fetch(`${s.url}${ep.path}`, {
        method: "OPTIONS",
        headers: {
          origin: ALLOWED,
          "access-control-request-method": "POST",
          "access-control-request-headers": "content-type, x-write-key",
        },
      });
      expect(res.status).toBeGreaterThanOrEqual(200);
      expect(res.status).toBeLessThan(300);
      expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED);
      expect(res.headers.get("access-control-allow-methods")).toContain("POST");
      expect(res.headers.get("access-control-allow-headers")?.toLowerCase()).toContain(
        "x-write-key",
      );
    });

    test("a POST from an allowed origin carries Access-Control-Allow-Origin", async () => {
      const id = newId(`${ep.path} cors`);
      const res = await send(s, ep, sampleEvent(id, payloadType(ep)), {
        key: keyFor(s, ep),
        headers: { origin: ALLOWED },
      });
      expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED);
      await expectAccepted(res, ep);
    });

    if (!ep.serverOnly) {
      test("a browser key from an origin its source does not allow gets 403", async () => {
        const id = newId(`${ep.path} foreign`);
        const res = await send(s, ep, sampleEvent(id), {
          key: s.keys.browser,
          headers: { origin: FOREIGN },
        });
        await expectError(res, 403);
        expect(await storedWithId(s, id)).toHaveLength(0);
      });
    }
  });
}

describe("unknown event types", () => {
  for (const path of [
    "/api/s/purchase",
    "/api/s/x",
    "/api/s/s2s/purchase",
    "/v1/purchase",
    "/v1/x",
    "/v1/e",
    "/v1/tr",
  ]) {
    test(`POST ${path} is 404 with an error body`, async () => {
      const id = newId(path);
      await expectError(await s.post(path, sampleEvent(id), { "x-write-key": s.keys.server }), 404);
      expect(await storedWithId(s, id)).toHaveLength(0);
    });
  }
});

describe("/api/s/event takes the type from the payload", () => {
  for (const type of EVENT_TYPES) {
    test(`a ${type} payload is stored as ${type}`, async () => {
      const id = newId(`event ${type}`);
      const res = await s.post("/api/s/event", sampleEvent(id, type), {
        "x-write-key": s.keys.server,
      });
      expect(res.status).toBe(200);
      expect(await storedWithId(s, id)).toMatchObject([{ type }]);
    });
  }

  test("a payload without a type is refused with 400", async () => {
    const id = newId("event no type");
    const { type: _omitted, ...event } = sampleEvent(id);
    await expectError(await s.post("/api/s/e", event, { "x-write-key": s.keys.server }), 400);
    expect(await storedWithId(s, id)).toHaveLength(0);
  });
});

test("the batch routes keep each event's own type", async () => {
  const ids = EVENT_TYPES.map((t) => newId(`batch ${t}`));
  const res = await s.post(
    "/v1/batch",
    { batch: EVENT_TYPES.map((t, i) => sampleEvent(ids[i]!, t)) },
    { "x-write-key": s.keys.server },
  );
  expect(await res.json()).toMatchObject({ accepted: EVENT_TYPES.length, rejected: [] });
  for (const [i, type] of EVENT_TYPES.entries()) {
    expect(await storedWithId(s, ids[i]!)).toMatchObject([{ type }]);
  }
});

test("a server key is not held to the browser origin list", async () => {
  const id = newId("server key foreign origin");
  const res = await s.post("/v1/track", sampleEvent(id), {
    "x-write-key": s.keys.server,
    origin: FOREIGN,
  });
  expect(res.status).toBe(200);
  expect(await storedWithId(s, id)).toHaveLength(1);
});

test("GET /health answers 200 without a key", async () => {
  const res = await fetch(`${s.url}/health`);
  expect(res.status).toBe(200);
  expect(await res.json()).toMatchObject({ ok: true });
});

test("GET /ready answers 200 without a key while the server can store events", async () => {
  const res = await fetch(`${s.url}/ready`);
  expect(res.status).toBe(200);
  expect(await res.json()).toMatchObject({ ok: true });
});

describe("when every source restricts origins", () => {
  let r: TestServer;
  const key = generateWriteKey("wk_only");
  beforeAll(async () => {
    r = await startTestServer({
      config: {
        sources: [
          {
            id: "shop",
            allowedOrigins: [ALLOWED],
            writeKeys: [{ id: "wk_only", type: "browser", hash: hashWriteKey(key) }],
          },
        ],
      },
    });
  });
  afterAll(() => r.cleanup());

  test("a preflight from a foreign origin gets no CORS permission", async () => {
    const res = await fetch(`${r.url}/api/s/track`, {
      method: "OPTIONS",
      headers: { origin: FOREIGN, "access-control-request-method": "POST" },
    });
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
  });

  test("a preflight from the allowed origin is permitted", async () => {
    const res = await fetch(`${r.url}/api/s/track`, {
      method: "OPTIONS",
      headers: { origin: ALLOWED, "access-control-request-method": "POST" },
    });
    expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED);
  });

  test("the browser key works from the allowed origin and is refused from another", async () => {
    const ok = await r.post("/api/s/track", sampleEvent(newId("shop ok")), {
      "x-write-key": key,
      origin: ALLOWED,
    });
    expect(ok.status).toBe(200);
    const refused = await r.post("/api/s/track", sampleEvent(newId("shop foreign")), {
      "x-write-key": key,
      origin: FOREIGN,
    });
    await expectError(refused, 403);
    expect(refused.headers.get("access-control-allow-origin")).toBeNull();
  });
});
