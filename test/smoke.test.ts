import { afterAll, beforeAll, expect, test } from "bun:test";
import { startTestServer, storedEvents, type TestServer } from "./support/server.ts";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(() => s.cleanup());

test("a tracked event is stored", async () => {
  const res = await s.post(
    "/v1/track",
    { event: "x", userId: "u" },
    { "x-write-key": s.keys.server },
  );
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ ok: true, success: true });
  const events = await storedEvents(s.dataDir);
  expect(events).toHaveLength(1);
  expect(events[0]).toMatchObject({ event: "x", userId: "u", sourceId: "web", keyId: "wk_server" });
});
