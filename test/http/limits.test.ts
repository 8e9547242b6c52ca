import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { gzipSync } from "node:zlib";
import { startTestServer, type TestServer } from "../support/server.ts";
import {
  batchAnswer,
  bodyFor,
  ENDPOINTS,
  type Endpoint,
  expectAccepted,
  expectError,
  keyFor,
  newId,
  payloadType,
  sampleEvent,
  storedWithId,
} from "./table.ts";

const MAX_BODY = 65_536;
const MAX_EVENTS = 10;
const MAX_EVENT = 2048;

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({
    config: {
      limits: { maxBodyBytes: MAX_BODY, maxBatchEvents: MAX_EVENTS, maxEventBytes: MAX_EVENT },
    },
  });
});
afterAll(() => s.cleanup());

const encode = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

/** A JSON body for `ep` whose size is over `bytes` (padding in a property). */
function paddedBody(ep: Endpoint, id: string, bytes: number) {
  return bodyFor(ep, sampleEvent(id, payloadType(ep), { properties: { pad: "x".repeat(bytes) } }));
}

/** POSTs raw bytes (no content type unless given) to `ep` with its key. */
function postRaw(ep: Endpoint, body: Uint8Array | string, headers: Record<string, string> = {}) {
  return s.post(ep.path, body, { "x-write-key": keyFor(s, ep), ...headers });
}

/** A chunked request (no Content-Length) whose body is `total` bytes of `bytes`, streamed. */
function postChunked(ep: Endpoint, bytes: Uint8Array, chunk = 8192) {
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent >= bytes.byteLength) return c.close();
      c.enqueue(bytes.subarray(sent, sent + chunk));
      sent += chunk;
    },
  });
  return fetch(`${s.url}${ep.path}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-write-key": keyFor(s, ep) },
    body,
  });
}

for (const ep of ENDPOINTS) {
  describe(`POST ${ep.path}`, () => {
    const contentTypes: [string, Record<string, string>, (b: Uint8Array) => Uint8Array][] = [
      ["application/json", { "content-type": "application/json" }, (b) => b],
      [
        "application/json; charset=utf-8",
        { "content-type": "application/json; charset=utf-8" },
        (b) => b,
      ],
      ["text/plain (sendBeacon)", { "content-type": "text/plain;charset=UTF-8" }, (b) => b],
      [
        "application/x-www-form-urlencoded over gzipped JSON (RudderStack)",
        { "content-type": "application/x-www-form-urlencoded", "content-encoding": "gzip" },
        (b) => gzipSync(b),
      ],
      ["no content type", {}, (b) => b],
    ];
    for (const [name, headers, wrap] of contentTypes) {
      test(`accepts ${name}`, async () => {
        const id = newId(`${ep.path} ${name}`);
        const body = encode(bodyFor(ep, sampleEvent(id, payloadType(ep))));
        await expectAccepted(await postRaw(ep, wrap(body), headers), ep);
        expect(await storedWithId(s, id)).toHaveLength(1);
      });
    }

    for (const type of ["application/xml", "multipart/form-data; boundary=xyz"]) {
      test(`refuses ${type.split(";")[0]} with 400`, async () => {
        const id = newId(`${ep.path} ${type}`);
        const body = encode(bodyFor(ep, sampleEvent(id, payloadType(ep))));
        await expectError(await postRaw(ep, body, { "content-type": type }), 400);
        expect(await storedWithId(s, id)).toHaveLength(0);
      });
    }

    test("refuses malformed JSON with 400", async () => {
      const res = await postRaw(ep, '{"userId": "u", "event": "x",', {
        "content-type": "application/json",
      });
      await expectError(res, 400);
    });

    test("refuses a body over maxBodyBytes (with Content-Length) with 413", async () => {
      const id = newId(`${ep.path} big`);
      const body = encode(paddedBody(ep, id, MAX_BODY));
      await expectError(await postRaw(ep, body, { "content-type": "application/json" }), 413);
      expect(await storedWithId(s, id)).toHaveLength(0);
    });

    test("refuses a chunked body over maxBodyBytes (no Content-Length) with 413", async () => {
      const id = newId(`${ep.path} chunked big`);
      await expectError(await postChunked(ep, encode(paddedBody(ep, id, MAX_BODY * 2))), 413);
      expect(await storedWithId(s, id)).toHaveLength(0);
    });

    test("accepts a chunked body under the limit", async () => {
      const id = newId(`${ep.path} chunked`);
      const body = encode(bodyFor(ep, sampleEvent(id, payloadType(ep))));
      await expectAccepted(await postChunked(ep, body, 64), ep);
      expect(await storedWithId(s, id)).toHaveLength(1);
    });

    test("refuses a gzipped body that inflates past maxBodyBytes with 413", async () => {
      const id = newId(`${ep.path} inflates`);
      const gz = gzipSync(encode(paddedBody(ep, id, MAX_BODY * 4)));
      expect(gz.byteLength).toBeLessThan(MAX_BODY); // only the decompressed size is over
      const res = await postRaw(ep, gz, {
        "content-type": "application/json",
        "content-encoding": "gzip",
      });
      await expectError(res, 413);
      expect(await storedWithId(s, id)).toHaveLength(0);
    });

    if (ep.kind === "single") {
      test("refuses one event over maxEventBytes with 413", async () => {
        const id = newId(`${ep.path} event big`);
        const body = paddedBody(ep, id, MAX_EVENT);
        await expectError(await s.post(ep.path, body, { "x-write-key": keyFor(s, ep) }), 413);
        expect(await storedWithId(s, id)).toHaveLength(0);
      });
    } else {
      test(`refuses a batch of more than maxBatchEvents (${MAX_EVENTS}) events with 400`, async () => {
        const ids = Array.from({ length: MAX_EVENTS + 1 }, () => newId(`${ep.path} many`));
        const res = await s.post(
          ep.path,
          { batch: ids.map((id) => sampleEvent(id)) },
          { "x-write-key": s.keys.server },
        );
        await expectError(res, 400);
        expect(await storedWithId(s, ids[0]!)).toHaveLength(0);
      });

      test(`accepts a batch of exactly maxBatchEvents (${MAX_EVENTS}) events`, async () => {
        const ids = Array.from({ length: MAX_EVENTS }, () => newId(`${ep.path} max`));
        const res = await s.post(
          ep.path,
          { batch: ids.map((id) => sampleEvent(id)) },
          { "x-write-key": s.keys.server },
        );
        expect(await res.json()).toMatchObject({ accepted: MAX_EVENTS, rejected: [] });
        expect(await storedWithId(s, ids[MAX_EVENTS - 1]!)).toHaveLength(1);
      });

      test("measures each event as sent, not as stored: a batch context does not count", async () => {
        /** An event whose JSON is exactly `bytes` long (ASCII), with a writeKey the server drops. */
        const sized = (id: string, bytes: number) => {
          const e = sampleEvent(id, "track", { writeKey: "wk_x:dropped", properties: { pad: "" } });
          const pad = bytes - JSON.stringify(e).length;
          return { ...e, properties: { pad: "x".repeat(pad) } };
        };
        const at = newId(`${ep.path} at limit`);
        const over = newId(`${ep.path} over limit`);
        expect(JSON.stringify(sized(at, MAX_EVENT)).length).toBe(MAX_EVENT);
        const res = await s.post(
          ep.path,
          {
            batch: [sized(at, MAX_EVENT), sized(over, MAX_EVENT + 1)],
            // Merged into every stored event: each stored event is over the limit.
            context: { library: { name: "x".repeat(MAX_EVENT) } },
          },
          { "x-write-key": s.keys.server },
        );
        const body = await batchAnswer(res);
        expect(body).toMatchObject({ received: 2, accepted: 1 });
        expect(body.rejected).toEqual([
          { index: 1, messageId: over, error: `event exceeds ${MAX_EVENT} bytes` },
        ]);
        expect(await storedWithId(s, at)).toHaveLength(1);
      });

      test("lists an event over maxEventBytes as rejected and stores the rest", async () => {
        const small = newId(`${ep.path} small`);
        const big = newId(`${ep.path} oversized`);
        const res = await s.post(
          ep.path,
          {
            batch: [
              sampleEvent(small),
              sampleEvent(big, "track", { properties: { pad: "x".repeat(MAX_EVENT) } }),
            ],
          },
          { "x-write-key": s.keys.server },
        );
        expect(res.status).toBe(200);
        const body = await batchAnswer(res);
        expect(body).toMatchObject({ received: 2, accepted: 1, duplicates: 0 });
        expect(body.rejected).toEqual([{ index: 1, messageId: big, error: expect.any(String) }]);
        expect(await storedWithId(s, small)).toHaveLength(1);
        expect(await storedWithId(s, big)).toHaveLength(0);
      });
    }
  });
}

describe("a gzip bomb (200 MB of zeros, ~200 KB compressed)", () => {
  let d: TestServer;
  let bomb: Uint8Array;
  beforeAll(async () => {
    bomb = new Uint8Array(gzipSync(Buffer.alloc(200 * 1024 * 1024)));
    // Default limits: the compressed bomb fits under maxBodyBytes (1 MB); only inflating it does not.
    d = await startTestServer();
  });
  afterAll(() => d.cleanup());

  test("is refused with 413 and the server keeps serving", async () => {
    expect(bomb.byteLength).toBeLessThan(1_048_576);
    const started = performance.now();
    const res = await d.post("/v1/batch", bomb, {
      "x-write-key": d.keys.server,
      "content-type": "application/json",
      "content-encoding": "gzip",
    });
    await expectError(res, 413);
    expect(performance.now() - started).toBeLessThan(5000);

    const id = newId("after bomb");
    const ok = await d.post("/v1/track", sampleEvent(id), { "x-write-key": d.keys.server });
    expect(await ok.json()).toEqual({ ok: true, success: true });
    expect(await storedWithId(d, id)).toHaveLength(1);
    const health = await fetch(`${d.url}/health`);
    expect(health.status).toBe(200);
  });

  test("sent to a single-event route is refused with 413 too", async () => {
    const res = await d.post("/api/s/track", bomb, {
      "x-write-key": d.keys.browser,
      "content-encoding": "gzip",
    });
    await expectError(res, 413);
    expect((await fetch(`${d.url}/ready`)).status).toBe(200);
  });
});

test("a gzipped body that is not gzip is refused with 400", async () => {
  const res = await s.post("/v1/track", encode(sampleEvent(newId("not gzip"))), {
    "x-write-key": s.keys.server,
    "content-type": "application/json",
    "content-encoding": "gzip",
  });
  await expectError(res, 400);
});

test("an empty body is refused with 400", async () => {
  await expectError(
    await s.post("/v1/track", "", {
      "x-write-key": s.keys.server,
      "content-type": "application/json",
    }),
    400,
  );
});

test("an authenticated request that fails before it is charged still carries the rate-limit headers", async () => {
  const s = await startTestServer();
  try {
    const key = { "x-write-key": s.keys.server };
    const malformed = await s.post("/v1/track", "{nope", {
      ...key,
      "content-type": "application/json",
    });
    expect(malformed.status).toBe(400);
    const xml = await s.post("/v1/batch", "<x/>", { ...key, "content-type": "application/xml" });
    expect(xml.status).toBe(400);
    const shape = await s.post("/v1/batch", { batch: "no" }, key);
    expect(shape.status).toBe(400);
    for (const res of [malformed, xml, shape]) {
      expect(res.headers.get("x-ratelimit-limit")).toBe("5000");
      expect(res.headers.get("x-ratelimit-remaining")).toBe("5000");
      expect(res.headers.get("x-ratelimit-reset")).toBe("0");
    }
  } finally {
    await s.cleanup();
  }
});
