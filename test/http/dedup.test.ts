import { afterAll, beforeAll, expect, test } from "bun:test";
import { basic, startTestServer, storedEvents, type TestServer } from "../support/server.ts";
import { batchAnswer, newId, sampleEvent, storedWithId } from "./table.ts";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(() => s.cleanup());

const SINGLE_OK = { ok: true, success: true };

test("a sequential duplicate is answered 200 and stored once", async () => {
  const id = newId("sequential");
  for (let i = 0; i < 3; i++) {
    const res = await s.post("/v1/track", sampleEvent(id), { "x-write-key": s.keys.server });
    expect({ status: res.status, body: await res.json() }).toEqual({
      status: 200,
      body: SINGLE_OK,
    });
  }
  expect(await storedWithId(s, id)).toHaveLength(1);
});

test("20 concurrent requests with the same messageId are all 200 and stored once", async () => {
  const id = newId("concurrent");
  const routes = ["/v1/track", "/api/s/track", "/api/s/s2s/t", "/v1/batch"];
  const responses = await Promise.all(
    Array.from({ length: 20 }, (_, i) => {
      const route = routes[i % routes.length]!;
      const event = sampleEvent(id);
      return s.post(route, route === "/v1/batch" ? { batch: [event] } : event, {
        "x-write-key": s.keys.server,
      });
    }),
  );
  expect(responses.map((r) => r.status)).toEqual(Array(20).fill(200));
  const batchBodies = await Promise.all(
    responses.filter((_, i) => routes[i % routes.length] === "/v1/batch").map(batchAnswer),
  );
  for (const b of batchBodies) expect(b.accepted + b.duplicates).toBe(1);
  expect(await storedWithId(s, id)).toHaveLength(1);
});

test("the same messageId twice in one batch is stored once and counted as a duplicate", async () => {
  const id = newId("in-batch");
  const other = newId("in-batch-other");
  const res = await s.post(
    "/v1/batch",
    {
      batch: [
        sampleEvent(id, "track", { event: "first" }),
        sampleEvent(other),
        sampleEvent(id, "track", { event: "second" }),
      ],
    },
    basic(s.keys.server),
  );
  expect(await res.json()).toEqual({
    success: true,
    ok: true,
    received: 3,
    accepted: 2,
    duplicates: 1,
    rejected: [],
  });
  const stored = await storedWithId(s, id);
  expect(stored).toHaveLength(1);
  expect(stored[0]).toMatchObject({ event: "first" });
});

test("a duplicate across routes and keys of the same source is dropped", async () => {
  const id = newId("cross-route");
  const a = await s.post("/api/s/track", sampleEvent(id), { "x-write-key": s.keys.browser });
  const b = await s.post("/v1/batch", { batch: [sampleEvent(id)] }, basic(s.keys.server));
  expect(a.status).toBe(200);
  expect(await b.json()).toMatchObject({ accepted: 0, duplicates: 1 });
  expect(await storedWithId(s, id)).toHaveLength(1);
});

test("different sources may reuse a messageId", async () => {
  const id = newId("two-sources");
  const web = await s.post("/v1/track", sampleEvent(id), { "x-write-key": s.keys.server });
  const other = await s.post("/v1/track", sampleEvent(id), { "x-write-key": s.keys.other });
  expect([web.status, other.status]).toEqual([200, 200]);
  const stored = await storedWithId(s, id);
  expect(stored.map((e) => e.sourceId).sort()).toEqual(["other", "web"]);
});

test("an event without a messageId is never a duplicate of another", async () => {
  const { messageId: _none, ...event } = sampleEvent("unused", "track", { event: newId("no-id") });
  await s.post("/v1/track", event, { "x-write-key": s.keys.server });
  await s.post("/v1/track", event, { "x-write-key": s.keys.server });
  const stored = (await storedEvents(s.dataDir)).filter((e) => e.event === event.event);
  expect(stored).toHaveLength(2);
  expect(stored[0]!.messageId).not.toBe(stored[1]!.messageId);
});

test("after a restart a duplicate is still dropped", async () => {
  const single = newId("restart-single");
  const inBatch = newId("restart-batch");
  await s.post("/v1/track", sampleEvent(single), { "x-write-key": s.keys.server });
  await s.post("/v1/batch", { batch: [sampleEvent(inBatch)] }, { "x-write-key": s.keys.browser });
  await s.restart();
  const again = await s.post("/v1/track", sampleEvent(single), { "x-write-key": s.keys.server });
  expect({ status: again.status, body: await again.json() }).toEqual({
    status: 200,
    body: SINGLE_OK,
  });
  const batch = await s.post(
    "/v1/batch",
    { batch: [sampleEvent(inBatch), sampleEvent(single)] },
    { "x-write-key": s.keys.server },
  );
  expect(await batch.json()).toMatchObject({ accepted: 0, duplicates: 2 });
  expect(await storedWithId(s, single)).toHaveLength(1);
  expect(await storedWithId(s, inBatch)).toHaveLength(1);
});

test("a messageId of any allowed form is a key end to end: stored once, then a duplicate, across routes and a restart", async () => {
  // Built from the JSON text so that `__proto__` and friends are plain own keys.
  const ids = [
    "x".repeat(100),
    "é".repeat(100), // 100 characters, 200 bytes
    "😀".repeat(50), // 100 UTF-16 units, 200 bytes
    "e\u0301", // NFD "é": not the same key as NFC "é"
    "é",
    "__proto__",
    "constructor",
    "hasOwnProperty",
    "toString",
    "a\u0000b", // a NUL, as the old in-memory key used for a separator
    "a",
    " a ",
    "web\u0000a",
  ];
  const post = (route: string, body: string, key = s.keys.server) =>
    s.post(route, body, { "x-write-key": key, "content-type": "application/json" });
  const event = (id: string) =>
    `{"type":"track","userId":"u","event":"any-form","messageId":${JSON.stringify(id)}}`;
  for (const id of ids) {
    const res = await post("/v1/track", event(id));
    expect({ id, status: res.status, body: await res.json() }).toEqual({
      id,
      status: 200,
      body: SINGLE_OK,
    });
  }
  const stored = async () =>
    (await storedEvents(s.dataDir)).filter((e) => e.event === "any-form").map((e) => e.messageId);
  expect((await stored()).sort()).toEqual([...ids].sort());

  const again = async () => {
    for (const id of ids) {
      const single = await post("/api/s/track", event(id), s.keys.browser);
      expect({ id, status: single.status }).toEqual({ id, status: 200 });
    }
    const batch = await post("/v1/batch", `{"batch":[${ids.map(event).join(",")}]}`);
    expect(await batch.json()).toMatchObject({
      received: ids.length,
      accepted: 0,
      duplicates: ids.length,
      rejected: [],
    });
    expect((await stored()).length).toBe(ids.length);
  };
  await again();
  await s.restart();
  await again();
  // A 101st character is refused by name, not truncated into another id's key.
  const long = await post("/v1/track", event("x".repeat(101)));
  expect(long.status).toBe(400);
  expect(await long.json()).toEqual({
    error: "messageId must be a string of at most 100 characters",
  });
});
