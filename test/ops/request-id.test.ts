import { afterAll, beforeAll, expect, test } from "bun:test";
import { startTestServer, type TestServer } from "../support/server.ts";

let direct: TestServer;
let proxied: TestServer;
beforeAll(async () => {
  direct = await startTestServer();
  proxied = await startTestServer({
    config: { server: { port: 0, host: "127.0.0.1", dataDir: "./data", trustProxy: true } },
  });
});
afterAll(async () => {
  await direct.cleanup();
  await proxied.cleanup();
});

const idOf = async (s: TestServer, headers: Record<string, string>) =>
  (await fetch(`${s.url}/health`, { headers })).headers.get("x-request-id");

test("a proxy's X-Request-Id is kept only behind a trusted proxy, and only if it looks like an id", async () => {
  expect(await idOf(proxied, { "x-request-id": "edge-42.a:b" })).toBe("edge-42.a:b");
  const own = await idOf(proxied, { "x-request-id": "no spaces <allowed>" });
  expect(own).toMatch(/^[0-9a-f]{8}-[0-9a-z]+$/);
  expect(await idOf(direct, { "x-request-id": "edge-42" })).toMatch(/^[0-9a-f]{8}-[0-9a-z]+$/);
  const a = await idOf(direct, {});
  const b = await idOf(direct, {});
  expect(a).not.toBe(b);
});

test("the observer leaves every answer intact: handled, failed in a route, unmatched", async () => {
  const ok = await fetch(`${direct.url}/health`);
  expect(await ok.json()).toEqual({ ok: true });
  const bad = await direct.post(
    "/v1/track",
    { userId: "u" },
    { "x-write-key": direct.keys.server },
  );
  expect(bad.status).toBe(400);
  expect(((await bad.json()) as { error: string }).error).toContain("track needs event");
  const none = await fetch(`${direct.url}/v1/purchase`, { method: "POST" });
  expect(none.status).toBe(404);
  expect(none.headers.get("content-type")).toStartWith("application/json");
  expect(none.headers.get("x-request-id")).toBeTruthy();
  expect(await none.json()).toEqual({ error: "not found" });
});
