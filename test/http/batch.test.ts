import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { startTestServer, type TestServer } from "../support/server.ts";
import { batchAnswer, expectError, newId, sampleEvent, storedWithId } from "./table.ts";

let s: TestServer;
let auth: Record<string, string>;
beforeAll(async () => {
  s = await startTestServer();
  auth = { "x-write-key": s.keys.server };
});
afterAll(() => s.cleanup());

test("a single event is answered with exactly {ok:true, success:true}", async () => {
  const res = await s.post("/v1/identify", { userId: "u1", traits: { plan: "pro" } }, auth);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("application/json");
  expect(await res.text()).toBe('{"ok":true,"success":true}');
});

test("a batch is answered with received, accepted, duplicates and rejected", async () => {
  const ids = [newId("b0"), newId("b1")];
  const res = await s.post("/v1/batch", { batch: ids.map((id) => sampleEvent(id)) }, auth);
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({
    success: true,
    ok: true,
    received: 2,
    accepted: 2,
    duplicates: 0,
    rejected: [],
  });
});

test("a partial batch stores the valid events and lists the invalid ones by index", async () => {
  const good = [newId("good0"), newId("good1"), newId("good2")];
  const bad = [newId("bad0"), newId("bad1")];
  const res = await s.post(
    "/batch",
    {
      batch: [
        sampleEvent(good[0]!),
        { type: "track", messageId: bad[0], userId: "u" }, // no event name
        sampleEvent(good[1]!, "page"),
        { type: "shout", messageId: bad[1], userId: "u" }, // unknown type
        sampleEvent(good[2]!, "identify"),
      ],
    },
    auth,
  );
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({
    success: true,
    ok: true,
    received: 5,
    accepted: 3,
    duplicates: 0,
    rejected: [
      { index: 1, messageId: bad[0], error: expect.stringContaining("event") },
      { index: 3, messageId: bad[1], error: expect.stringContaining("type") },
    ],
  });
  for (const id of good) expect(await storedWithId(s, id)).toHaveLength(1);
  for (const id of bad) expect(await storedWithId(s, id)).toHaveLength(0);
});

test("an invalid event in a batch is written to the server log", async () => {
  const bad = newId("logged");
  await s.post(
    "/v1/batch",
    { batch: [sampleEvent(newId("fine")), { type: "group", messageId: bad, userId: "u" }] },
    auth,
  );
  const lines = readFileSync(s.logFile, "utf8")
    .split("\n")
    .filter((l) => l.includes(bad));
  expect(lines.length).toBeGreaterThan(0);
  expect(lines.join("\n")).toContain("groupId");
});

test("a rejected item without a messageId is still listed by index", async () => {
  const res = await s.post(
    "/v1/batch",
    { batch: [sampleEvent(newId("ok")), { type: "track", event: "x" }] },
    auth,
  );
  const body = await batchAnswer(res);
  expect(body.rejected).toEqual([{ index: 1, error: expect.stringContaining("userId") }]);
});

test("a batch where every event is invalid is 400 with success:false and an error", async () => {
  const ids = [newId("inv0"), newId("inv1")];
  const res = await s.post(
    "/v1/batch",
    {
      batch: [
        { type: "alias", messageId: ids[0], userId: "u" },
        { messageId: ids[1], userId: "u" },
      ],
    },
    auth,
  );
  const body = await expectError(res, 400);
  expect(body).toMatchObject({
    success: false,
    ok: false,
    received: 2,
    accepted: 0,
    duplicates: 0,
    rejected: [
      { index: 0, messageId: ids[0], error: expect.any(String) },
      { index: 1, messageId: ids[1], error: expect.any(String) },
    ],
  });
  for (const id of ids) expect(await storedWithId(s, id)).toHaveLength(0);
});

test("a batch of duplicates only is a success with accepted 0", async () => {
  const id = newId("dup-only");
  await s.post("/v1/batch", { batch: [sampleEvent(id)] }, auth);
  const res = await s.post("/v1/batch", { batch: [sampleEvent(id)] }, auth);
  expect(res.status).toBe(200);
  expect(await res.json()).toMatchObject({ success: true, accepted: 0, duplicates: 1 });
});

for (const [name, body] of [
  ["no batch field", { events: [] }],
  ["a batch that is not an array", { batch: { type: "track" } }],
  ["an empty batch", { batch: [] }],
  ["a JSON array instead of an object", [{ type: "track" }]],
  ["a batch context that is not an object", { batch: [sampleEvent("c")], context: "web" }],
  ["a batch sentAt that is not ISO-8601", { batch: [sampleEvent("t")], sentAt: "yesterday" }],
] as const) {
  test(`a batch body with ${name} is 400`, async () => {
    await expectError(await s.post("/v1/batch", body, auth), 400);
  });
}

test("a single-event route refuses a JSON array with 400", async () => {
  await expectError(await s.post("/v1/track", [sampleEvent(newId("arr"))], auth), 400);
});
