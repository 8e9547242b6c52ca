import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { basic, startTestServer, type TestServer } from "../support/server.ts";
import {
  AUTH_FORMS,
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

let s: TestServer;
/** Every key string a request in this file presented, valid or not (for the secrets check). */
const presented = new Set<string>();

beforeAll(async () => {
  s = await startTestServer();
  presented.add(s.keys.browser).add(s.keys.server).add(s.keys.other);
});
afterAll(() => s.cleanup());

/** A key with a real key id and a wrong secret: same shape as a real one, unknown to the server. */
function wrongKey(key: string): string {
  const wrong = `${key.split(":")[0]}:${"x".repeat(43)}${presented.size}`;
  presented.add(wrong);
  return wrong;
}

for (const ep of ENDPOINTS) {
  describe(`POST ${ep.path}`, () => {
    for (const form of AUTH_FORMS) {
      test(`accepts the key from ${form.name}`, async () => {
        const id = newId(`${ep.path} ${form.name}`);
        const key = keyFor(s, ep);
        const res = await send(s, ep, sampleEvent(id, payloadType(ep)), { key, form });
        await expectAccepted(res, ep);
        const stored = await storedWithId(s, id);
        expect(stored).toHaveLength(1);
        expect(stored[0]).toMatchObject({
          type: storedType(ep),
          sourceId: "web",
          keyId: ep.serverOnly ? "wk_server" : "wk_browser",
        });
        expect(stored[0]).not.toHaveProperty("writeKey");
      });

      test(`refuses an unknown key from ${form.name} with 401`, async () => {
        const id = newId(`${ep.path} unknown ${form.name}`);
        const res = await send(s, ep, sampleEvent(id), { key: wrongKey(keyFor(s, ep)), form });
        await expectError(res, 401);
        expect(await storedWithId(s, id)).toHaveLength(0);
      });
    }

    test("refuses a request without a key with 401", async () => {
      const id = newId(`${ep.path} no key`);
      await expectError(await send(s, ep, sampleEvent(id)), 401);
      expect(await storedWithId(s, id)).toHaveLength(0);
    });

    test("refuses an empty key with 401", async () => {
      const id = newId(`${ep.path} empty key`);
      const res = await send(s, ep, sampleEvent(id), {
        headers: { "x-write-key": "", authorization: "Bearer " },
        body: { writeKey: "" },
      });
      await expectError(res, 401);
      expect(await storedWithId(s, id)).toHaveLength(0);
    });

    test("a header key beats Jitsu's masked id:*** copy in the body", async () => {
      const id = newId(`${ep.path} masked`);
      const key = keyFor(s, ep);
      const masked = `${key.split(":")[0]}:***`;
      const res = await send(s, ep, sampleEvent(id, payloadType(ep)), {
        key,
        body: { writeKey: masked },
      });
      await expectAccepted(res, ep);
      const [stored] = await storedWithId(s, id);
      expect(stored).toBeDefined();
      expect(stored).not.toHaveProperty("writeKey");
    });

    test("a header key beats another source's valid key in the body", async () => {
      const id = newId(`${ep.path} header wins`);
      const res = await send(s, ep, sampleEvent(id, payloadType(ep)), {
        key: s.keys.server,
        form: AUTH_FORMS[0],
        body: { writeKey: s.keys.other },
      });
      await expectAccepted(res, ep);
      expect(await storedWithId(s, id)).toMatchObject([{ sourceId: "web", keyId: "wk_server" }]);
    });

    test("an authenticated response carries X-RateLimit-Limit, -Remaining and -Reset", async () => {
      const res = await send(s, ep, sampleEvent(newId(`${ep.path} rate`), payloadType(ep)), {
        key: s.keys.server,
      });
      expect(res.status).toBe(200);
      const limit = Number(res.headers.get("x-ratelimit-limit"));
      const remaining = Number(res.headers.get("x-ratelimit-remaining"));
      const reset = Number(res.headers.get("x-ratelimit-reset"));
      expect(limit).toBe(5000); // the default burst
      expect(Number.isInteger(remaining) && remaining >= 0 && remaining < limit).toBe(true);
      expect(Number.isInteger(reset) && reset >= 0).toBe(true);
    });

    if (ep.serverOnly) {
      test("refuses a browser key with 401 (server-to-server route)", async () => {
        const id = newId(`${ep.path} browser`);
        const res = await send(s, ep, sampleEvent(id), { key: s.keys.browser });
        await expectError(res, 401);
        expect(await storedWithId(s, id)).toHaveLength(0);
      });
    }
  });
}

test("a rejected but authenticated single event still carries the rate-limit headers", async () => {
  const res = await s.post("/v1/track", { userId: "u" }, basic(s.keys.server));
  await expectError(res, 400);
  expect(res.headers.get("x-ratelimit-limit")).toBe("5000");
  expect(res.headers.get("x-ratelimit-remaining")).toMatch(/^\d+$/);
  expect(res.headers.get("x-ratelimit-reset")).toMatch(/^\d+$/);
});

test("a masked body key alone is not a key: 401", async () => {
  const masked = `${s.keys.browser.split(":")[0]}:***`;
  await expectError(
    await s.post("/v1/track", { ...sampleEvent(newId("masked only")), writeKey: masked }),
    401,
  );
});

test("a wrong key in a header is refused even when the body holds a valid one", async () => {
  const id = newId("wrong header");
  const res = await s.post(
    "/v1/track",
    { ...sampleEvent(id), writeKey: s.keys.server },
    { "x-write-key": wrongKey(s.keys.server) },
  );
  await expectError(res, 401);
  expect(await storedWithId(s, id)).toHaveLength(0);
});

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

// Runs last: by now every auth form has been used with valid and wrong keys.
test("no write key or key secret is written to any file (event log, state, server log)", async () => {
  await s.stop(); // flush everything the server holds in memory (dedup keys, buckets, log)
  const files = filesUnder(s.dir);
  const contents = files.map((f) => ({ f, text: readFileSync(f).toString("latin1") }));
  // The check reads real data: the log file and the event log name the key ids.
  expect(contents.find((c) => c.f === s.logFile)?.text).toContain("request failed");
  expect(contents.some((c) => c.f.startsWith(s.dataDir) && c.text.includes("wk_browser"))).toBe(
    true,
  );
  const leaks: string[] = [];
  for (const key of presented) {
    const secret = key.slice(key.indexOf(":") + 1);
    const needles = [key, secret, Buffer.from(`${key}:`).toString("base64")];
    for (const { f, text } of contents) {
      for (const n of needles) if (text.includes(n)) leaks.push(`${f} holds ${n.slice(0, 12)}…`);
    }
  }
  expect(leaks).toEqual([]);
});
