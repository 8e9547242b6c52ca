import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { generateWriteKey } from "../../src/auth/keys.ts";
import { startTestServer, type TestServer } from "../support/server.ts";
import {
  batchAnswer,
  ENDPOINTS,
  expectAccepted,
  expectError,
  newId,
  sampleEvent,
  storedWithId,
} from "./table.ts";

// Issue 13's input findings: each of these failed on the code before the fix.

/** An event whose `properties` nest `depth` arrays deep: JSON.parse takes it, JSON.stringify overflows its stack. */
function deepEvent(id: string, depth: number): string {
  const nested = `${"[".repeat(depth)}${"]".repeat(depth)}`;
  return `{"type":"track","event":"Deep","userId":"u","messageId":"${id}","properties":{"x":${nested}}}`;
}
const DEPTH = 100_000;

let s: TestServer;
let auth: Record<string, string>;
beforeAll(async () => {
  // Events and bodies large enough that the deep event reaches the serialiser.
  s = await startTestServer({
    config: { limits: { maxEventBytes: 1_000_000, maxBodyBytes: 2_000_000 } },
  });
  auth = { "x-write-key": s.keys.server, "content-type": "application/json" };
});
afterAll(() => s.cleanup());

describe("an item that cannot be serialised is rejected alone", () => {
  test("quickly: the server does not stall on it", async () => {
    const started = performance.now();
    const res = await s.post("/v1/batch", `{"batch":[${deepEvent(newId("quick"), 40_000)}]}`, auth);
    expect(res.status).toBe(400);
    // JSON.stringify spent 3-4 s before it threw at this depth; the depth check takes ms.
    expect(performance.now() - started).toBeLessThan(1500);
  });

  test("1,000 levels are accepted, 1,001 are not", async () => {
    const ok = newId("depth 1000");
    const deep = newId("depth 1001");
    // The event is level 1 and properties level 2: `x` adds the rest.
    const nest = (id: string, levels: number) =>
      `{"type":"track","event":"Deep","userId":"u","messageId":"${id}","properties":{"x":${"[".repeat(levels - 2)}${"]".repeat(levels - 2)}}}`;
    const res = await s.post(
      "/v1/batch",
      `{"batch":[${nest(ok, 1000)},${nest(deep, 1001)}]}`,
      auth,
    );
    const answer = await batchAnswer(res);
    expect(answer.rejected).toEqual([
      { index: 1, messageId: deep, error: "event is nested more than 1000 levels deep" },
    ]);
    expect(await storedWithId(s, ok)).toHaveLength(1);
  });

  test("a batch item nested ~100k levels deep is listed as rejected; the rest is stored", async () => {
    const ok = newId("beside deep");
    const deep = newId("deep");
    const body = `{"batch":[${JSON.stringify(sampleEvent(ok))},${deepEvent(deep, DEPTH)}]}`;
    const res = await s.post("/v1/batch", body, auth);
    expect(res.status).toBe(200);
    const answer = await batchAnswer(res);
    expect(answer).toMatchObject({ received: 2, accepted: 1, duplicates: 0 });
    expect(answer.rejected).toEqual([
      { index: 1, messageId: deep, error: expect.stringContaining("nested") },
    ]);
    expect(await storedWithId(s, ok)).toHaveLength(1);
    expect(await storedWithId(s, deep)).toHaveLength(0);
  });

  test("with default limits too (the size check was what threw)", async () => {
    const d = await startTestServer();
    try {
      const ok = newId("beside deep, default limits");
      const body = `{"batch":[${JSON.stringify(sampleEvent(ok))},${deepEvent(newId("deep"), DEPTH)}]}`;
      const res = await d.post("/v1/batch", body, {
        "x-write-key": d.keys.server,
        "content-type": "application/json",
      });
      expect(res.status).toBe(200);
      expect((await batchAnswer(res)).rejected).toHaveLength(1);
      expect(await storedWithId(d, ok)).toHaveLength(1);
    } finally {
      await d.cleanup();
    }
  });

  for (const path of ["/v1/track", "/api/s/track", "/api/s/s2s/event"]) {
    test(`one such event on ${path} is a 400, and the server stays ready`, async () => {
      const id = newId(`deep ${path}`);
      const body = await expectError(await s.post(path, deepEvent(id, DEPTH), auth), 400);
      expect(body.error).toContain("nested");
      expect(await storedWithId(s, id)).toHaveLength(0);
      expect((await fetch(`${s.url}/ready`)).status).toBe(200);
    });
  }
});

test("/api/funcs: such an event is a 400, not a 500", async () => {
  const f = await startTestServer({
    files: { "fn/add.js": "export default (e) => { e.added = true; };" },
    config: {
      limits: { maxEventBytes: 1_000_000, maxBodyBytes: 2_000_000 },
      functions: [{ id: "add", file: "./fn/add.js" }],
      connections: [
        { id: "c_add", source: "web", destination: { type: "device" }, functions: ["add"] },
      ],
    },
  });
  try {
    const headers = { "x-write-key": f.keys.server, "content-type": "application/json" };
    const res = await f.post("/api/funcs/c_add", deepEvent("deep-funcs", DEPTH), headers);
    expect((await expectError(res, 400)).error).toContain("nested");
    const ok = await f.post("/api/funcs/c_add", sampleEvent("fine"), headers);
    const answer = (await ok.json()) as { events?: { added?: boolean }[] };
    expect({ status: ok.status, added: answer.events?.[0]?.added }).toEqual({
      status: 200,
      added: true,
    });
  } finally {
    await f.cleanup();
  }
});

describe("timestamps are real calendar dates in the years 1970–9999", () => {
  const bad = [
    "2020-02-30",
    "2021-02-29T00:00:00Z",
    "2024-04-31",
    "0000-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "2024-01-01T24:00:00Z",
    "2024-01-01T23:60:00Z",
    "2024-01-01T10:00:00+25:00",
    "2024-01-01T10:00:00+15:00",
    "2024-01-01T10:00:00,5Z",
    "2024-01-01T10:00:00.1234567890Z",
  ];
  for (const field of ["timestamp", "originalTimestamp", "sentAt"]) {
    for (const value of bad) {
      test(`${field} ${value}: a single event is refused naming the field`, async () => {
        const id = newId(`${field} ${value}`);
        const res = await s.post("/v1/track", sampleEvent(id, "track", { [field]: value }), auth);
        expect((await expectError(res, 400)).error).toContain(field);
        expect(await storedWithId(s, id)).toHaveLength(0);
      });
    }
    test(`${field}: in a batch only the item is rejected`, async () => {
      const good = newId(`${field} good`);
      const wrong = newId(`${field} wrong`);
      const res = await s.post(
        "/v1/batch",
        { batch: [sampleEvent(good), sampleEvent(wrong, "track", { [field]: "2020-02-30" })] },
        auth,
      );
      expect(res.status).toBe(200);
      const answer = await batchAnswer(res);
      expect(answer.rejected).toEqual([
        { index: 1, messageId: wrong, error: expect.stringContaining(field) },
      ]);
      expect(await storedWithId(s, good)).toHaveLength(1);
      expect(await storedWithId(s, wrong)).toHaveLength(0);
    });
  }

  test("a batch whose own sentAt is impossible is a 400", async () => {
    const id = newId("batch sentAt");
    const res = await s.post("/v1/batch", { batch: [sampleEvent(id)], sentAt: "2023-02-29" }, auth);
    expect((await expectError(res, 400)).error).toContain("sentAt");
    expect(await storedWithId(s, id)).toHaveLength(0);
  });

  for (const good of [
    "2020-02-29",
    "1970-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999Z",
    "2024-05-01 12:30:00.5+0200",
    "2024-05-01t12:30:00.123456789-12:00",
  ]) {
    test(`timestamp ${good} is accepted and kept as sent`, async () => {
      const id = newId(`good ${good}`);
      const res = await s.post("/v1/track", sampleEvent(id, "track", { timestamp: good }), auth);
      expect(res.status).toBe(200);
      expect((await storedWithId(s, id))[0]?.timestamp).toBe(good);
    });
  }

  test("a skew correction that would leave the years 1970–9999 stores receivedAt", async () => {
    const id = newId("skew out of range");
    const res = await s.post(
      "/v1/track",
      sampleEvent(id, "track", {
        originalTimestamp: "9999-06-01T00:00:00Z",
        sentAt: "1970-01-02T00:00:00Z",
      }),
      auth,
    );
    expect(res.status).toBe(200);
    const [stored] = await storedWithId(s, id);
    expect(stored?.timestamp).toBe(stored?.receivedAt);
    expect(stored?.originalTimestamp).toBe("9999-06-01T00:00:00Z");
  });

  test("a time without an offset is UTC in the skew correction", async () => {
    const id = newId("no offset");
    const res = await s.post(
      "/v1/track",
      sampleEvent(id, "track", {
        timestamp: "2024-05-01T12:00:00",
        sentAt: "2024-05-01T13:00:00Z",
      }),
      auth,
    );
    expect(res.status).toBe(200);
    const [stored] = await storedWithId(s, id);
    const receivedAt = Date.parse(stored?.receivedAt as string);
    expect(Date.parse(stored?.timestamp as string)).toBe(receivedAt - 3_600_000);
  });
});

describe("event types are looked up as data, never on Object.prototype", () => {
  for (const path of [
    "/api/s/constructor",
    "/api/s/__proto__",
    "/api/s/toString",
    "/api/s/s2s/hasOwnProperty",
    "/api/s/s2s/valueOf",
  ]) {
    test(`POST ${path} is 404`, async () => {
      const id = newId(path);
      await expectError(await s.post(path, sampleEvent(id), auth), 404);
      expect(await storedWithId(s, id)).toHaveLength(0);
    });
  }
});

describe("a charset other than UTF-8 is a 415", () => {
  const single = ENDPOINTS.find((e) => e.path === "/v1/track")!;
  const batch = ENDPOINTS.find((e) => e.path === "/v1/batch")!;
  for (const ep of [single, batch]) {
    for (const type of [
      "application/json; charset=utf-16",
      "application/json; charset=ISO-8859-1",
      "text/plain;charset=windows-1252",
      'application/json; charset="us-ascii"',
    ]) {
      test(`${ep.path} with ${type}`, async () => {
        const id = newId(`${ep.path} ${type}`);
        const json = JSON.stringify(
          ep.kind === "batch" ? { batch: [sampleEvent(id)] } : sampleEvent(id),
        );
        const res = await s.post(ep.path, json, { ...auth, "content-type": type });
        await expectError(res, 415);
        expect(await storedWithId(s, id)).toHaveLength(0);
      });
    }
    for (const type of [
      "application/json; charset=UTF-8",
      'application/json; charset="utf-8"',
      "application/json;charset=utf8",
      "application/json; foo=bar",
    ]) {
      test(`${ep.path} with ${type} is accepted`, async () => {
        const id = newId(`${ep.path} ${type}`);
        const json = JSON.stringify(
          ep.kind === "batch" ? { batch: [sampleEvent(id)] } : sampleEvent(id),
        );
        await expectAccepted(await s.post(ep.path, json, { ...auth, "content-type": type }), ep);
        expect(await storedWithId(s, id)).toHaveLength(1);
      });
    }
  }

  test("a UTF-8 byte order mark before the JSON is ignored (RFC 8259), sent plain or gzipped", async () => {
    for (const gzip of [false, true]) {
      const id = newId(`bom ${gzip}`);
      const text = `\ufeff${JSON.stringify(sampleEvent(id))}`;
      const bytes = new TextEncoder().encode(text);
      expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
      const res = await s.post("/v1/track", gzip ? Bun.gzipSync(bytes) : bytes, {
        ...auth,
        ...(gzip ? { "content-encoding": "gzip" } : {}),
      });
      expect(res.status).toBe(200);
      expect(await storedWithId(s, id)).toHaveLength(1);
    }
  });

  test("a UTF-16 body declared as such is refused, not stored as garbage", async () => {
    const id = newId("utf-16 body");
    const text = JSON.stringify(sampleEvent(id));
    const utf16 = new Uint8Array(Buffer.from(`\ufeff${text}`, "utf16le"));
    const res = await s.post("/v1/track", utf16, {
      ...auth,
      "content-type": "application/json; charset=utf-16",
    });
    await expectError(res, 415);
  });
});

describe("no log line holds a write key sent in a path", () => {
  test("404s and other failures log the route pattern, never the path", async () => {
    const wrong = generateWriteKey("wk_guess");
    const keys = [s.keys.server, s.keys.browser, wrong];
    const paths = (k: string) => [
      `/api/s/${k}`,
      `/api/s/s2s/${k}`,
      `/v1/${k}`,
      `/api/funcs/${k}`,
      `/V1/projects/${k}/settings`,
      `//v1/projects/${k}/settings`,
      `/v1/projects/${k}/settings/`,
      `/${k}`,
    ];
    const statuses: number[] = [];
    for (const k of keys) {
      for (const p of [...paths(k), ...paths(encodeURIComponent(k))]) {
        for (const method of ["GET", "POST"]) {
          const res = await fetch(`${s.url}${p}`, {
            method,
            headers: { "x-write-key": s.keys.server, "content-type": "application/json" },
            body: method === "POST" ? JSON.stringify(sampleEvent(newId("path key"))) : undefined,
          });
          await res.arrayBuffer();
          statuses.push(res.status);
        }
      }
    }
    expect(statuses.filter((st) => st === 404).length).toBeGreaterThan(40);
    const log = readFileSync(s.logFile, "utf8");
    for (const k of keys) {
      for (const secret of [k, encodeURIComponent(k), k.slice(k.indexOf(":") + 1)]) {
        expect(log).not.toContain(secret);
      }
    }
    const failed = log
      .split("\n")
      .filter((l) => l.includes('"request failed"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(failed.length).toBeGreaterThan(40);
    for (const line of failed) {
      expect(line.path).toBeUndefined();
      expect(typeof line.route).toBe("string");
    }
    expect(failed.map((l) => l.route)).toEqual(
      expect.arrayContaining([
        "unmatched",
        "/api/s/:type",
        "/api/s/s2s/:type",
        "/api/funcs/:conId",
      ]),
    );
  });
});
