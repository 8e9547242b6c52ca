import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { newId, storedWithId } from "../http/table.ts";
import { startTestServer, storedEvents, type TestServer } from "../support/server.ts";

const HOUR = 3_600_000;
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(() => s.cleanup());

type Json = Record<string, unknown>;

/** Posts to `path` and returns the single stored event with `messageId`. */
async function storeAndRead(
  srv: TestServer,
  path: string,
  body: Json,
  headers: Record<string, string>,
  messageId: string,
): Promise<Json> {
  const res = await srv.post(path, body, headers);
  expect(res.status).toBe(200);
  const stored = await storedWithId(srv, messageId);
  expect(stored).toHaveLength(1);
  return stored[0]!;
}

describe("messageId", () => {
  test("is added as a UUIDv7 when absent (single event)", async () => {
    const marker = newId("no-message-id");
    const res = await s.post(
      "/v1/track",
      { userId: "u", event: marker },
      {
        "x-write-key": s.keys.server,
      },
    );
    expect(res.status).toBe(200);
    const [stored] = (await storedEvents(s.dataDir)).filter((e) => e.event === marker);
    expect(stored?.messageId).toMatch(UUID_V7);
  });

  test("is added to each event of a batch, all different", async () => {
    const marker = newId("batch-no-id");
    const res = await s.post(
      "/v1/batch",
      { batch: [1, 2, 3].map(() => ({ type: "track", userId: "u", event: marker })) },
      { "x-write-key": s.keys.server },
    );
    expect(await res.json()).toMatchObject({ accepted: 3 });
    const ids = (await storedEvents(s.dataDir))
      .filter((e) => e.event === marker)
      .map((e) => e.messageId as string);
    expect(ids).toHaveLength(3);
    for (const id of ids) expect(id).toMatch(UUID_V7);
    expect(new Set(ids).size).toBe(3);
  });

  test("the client's messageId is kept", async () => {
    const id = newId("kept");
    const e = await storeAndRead(
      s,
      "/v1/track",
      { userId: "u", event: "x", messageId: id },
      {
        "x-write-key": s.keys.server,
      },
      id,
    );
    expect(e.messageId).toBe(id);
  });
});

describe("timestamps", () => {
  test("receivedAt is the server's time, ISO-8601 with milliseconds", async () => {
    const id = newId("received");
    const before = Date.now();
    const e = await storeAndRead(
      s,
      "/v1/track",
      { userId: "u", event: "x", messageId: id },
      {
        "x-write-key": s.keys.server,
      },
      id,
    );
    const after = Date.now();
    expect(e.receivedAt).toMatch(ISO_MS);
    const at = Date.parse(e.receivedAt as string);
    expect(at).toBeGreaterThanOrEqual(before);
    expect(at).toBeLessThanOrEqual(after);
  });

  test("without a client timestamp, timestamp = receivedAt", async () => {
    const id = newId("no-ts");
    const e = await storeAndRead(
      s,
      "/api/s/page",
      { anonymousId: "a", messageId: id },
      {
        "x-write-key": s.keys.browser,
      },
      id,
    );
    expect(e.timestamp).toBe(e.receivedAt);
  });

  test("a client clock one hour behind is corrected with the event's sentAt", async () => {
    const id = newId("skew-event");
    const now = Date.now();
    // The event happened 5 s before it was sent; both read from a clock 1 h slow.
    const clientTs = new Date(now - HOUR - 5000).toISOString();
    const sentAt = new Date(now - HOUR).toISOString();
    const e = await storeAndRead(
      s,
      "/v1/track",
      { userId: "u", event: "x", messageId: id, timestamp: clientTs, sentAt },
      { "x-write-key": s.keys.server },
      id,
    );
    expect(e.originalTimestamp).toBe(clientTs);
    expect(Date.parse(e.timestamp as string)).toBe(Date.parse(e.receivedAt as string) - 5000);
    expect(Math.abs(Date.parse(e.timestamp as string) - now)).toBeLessThan(60_000);
  });

  test("originalTimestamp is the client time when the client sends it instead of timestamp", async () => {
    const id = newId("skew-original");
    const now = Date.now();
    const clientTs = new Date(now - HOUR).toISOString();
    const e = await storeAndRead(
      s,
      "/api/s/s2s/track",
      { userId: "u", event: "x", messageId: id, originalTimestamp: clientTs, sentAt: clientTs },
      { "x-write-key": s.keys.server },
      id,
    );
    expect(e.originalTimestamp).toBe(clientTs);
    expect(e.timestamp).toBe(e.receivedAt);
  });

  test("a batch's sentAt corrects every event of the batch", async () => {
    const ids = [newId("skew-batch-0"), newId("skew-batch-1")];
    const now = Date.now();
    const sentAt = new Date(now - HOUR).toISOString();
    const times = [new Date(now - HOUR - 1000).toISOString(), new Date(now - HOUR).toISOString()];
    const res = await s.post(
      "/v1/batch",
      {
        sentAt,
        batch: ids.map((id, i) => ({
          type: "track",
          userId: "u",
          event: "x",
          messageId: id,
          timestamp: times[i],
        })),
      },
      { "x-write-key": s.keys.server },
    );
    expect(res.status).toBe(200);
    for (const [i, id] of ids.entries()) {
      const [e] = await storedWithId(s, id);
      expect(e!.originalTimestamp).toBe(times[i]!);
      const received = Date.parse(e!.receivedAt as string);
      expect(Date.parse(e!.timestamp as string)).toBe(received - (i === 0 ? 1000 : 0));
    }
  });

  test("an event's own sentAt wins over the batch's", async () => {
    const id = newId("own-sentAt");
    const now = Date.now();
    const clientTs = new Date(now - 2 * HOUR).toISOString();
    const res = await s.post(
      "/v1/batch",
      {
        sentAt: new Date(now - HOUR).toISOString(),
        batch: [
          {
            type: "track",
            userId: "u",
            event: "x",
            messageId: id,
            timestamp: clientTs,
            sentAt: clientTs,
          },
        ],
      },
      { "x-write-key": s.keys.server },
    );
    expect(res.status).toBe(200);
    const [e] = await storedWithId(s, id);
    expect(e!.timestamp).toBe(e!.receivedAt);
  });

  test("without sentAt the client's timestamp is kept as sent", async () => {
    const id = newId("no-sentAt");
    const clientTs = "2024-05-01T12:00:00.000Z";
    const e = await storeAndRead(
      s,
      "/v1/track",
      { userId: "u", event: "x", messageId: id, timestamp: clientTs },
      { "x-write-key": s.keys.server },
      id,
    );
    expect(e.timestamp).toBe(clientTs);
  });
});

describe("batch context and integrations", () => {
  test("are merged under each event's own; the event's keys win", async () => {
    const ids = [newId("merge-own"), newId("merge-none")];
    const res = await s.post(
      "/v1/batch",
      {
        context: { library: { name: "analytics-node" }, locale: "en-US", ip: "198.51.100.1" },
        integrations: { All: true, Mixpanel: false },
        batch: [
          {
            type: "track",
            userId: "u",
            event: "x",
            messageId: ids[0],
            context: { locale: "de-DE", page: { path: "/" } },
            integrations: { Mixpanel: true },
          },
          { type: "identify", userId: "u", messageId: ids[1] },
        ],
      },
      { "x-write-key": s.keys.server },
    );
    expect(res.status).toBe(200);
    const [own] = await storedWithId(s, ids[0]!);
    expect(own!.context).toEqual({
      library: { name: "analytics-node" },
      locale: "de-DE",
      ip: "198.51.100.1",
      page: { path: "/" },
    });
    expect(own!.integrations).toEqual({ All: true, Mixpanel: true });
    const [bare] = await storedWithId(s, ids[1]!);
    expect(bare!.context).toEqual({
      library: { name: "analytics-node" },
      locale: "en-US",
      ip: "198.51.100.1",
    });
    expect(bare!.integrations).toEqual({ All: true, Mixpanel: false });
  });
});

describe("request facts", () => {
  test("a browser key fills context.ip and context.userAgent from the request", async () => {
    const id = newId("browser-fill");
    const e = await storeAndRead(
      s,
      "/api/s/track",
      { userId: "u", event: "x", messageId: id, context: { locale: "en" } },
      { "x-write-key": s.keys.browser, "user-agent": "TestBrowser/1.0" },
      id,
    );
    expect(e.context).toEqual({ locale: "en", ip: "127.0.0.1", userAgent: "TestBrowser/1.0" });
    expect(e.requestIp).toBe("127.0.0.1");
  });

  test("a browser key keeps the payload's own context.ip and userAgent", async () => {
    const id = newId("browser-own");
    const e = await storeAndRead(
      s,
      "/api/s/track",
      {
        userId: "u",
        event: "x",
        messageId: id,
        context: { ip: "203.0.113.9", userAgent: "Sent/2.0" },
      },
      { "x-write-key": s.keys.browser, "user-agent": "TestBrowser/1.0" },
      id,
    );
    expect(e.context).toEqual({ ip: "203.0.113.9", userAgent: "Sent/2.0" });
    expect(e.requestIp).toBe("127.0.0.1");
  });

  test("a server key does not fill context.ip or context.userAgent", async () => {
    const id = newId("server-nofill");
    const withContext = await storeAndRead(
      s,
      "/v1/track",
      { userId: "u", event: "x", messageId: id, context: { locale: "en" } },
      { "x-write-key": s.keys.server, "user-agent": "Backend/1.0" },
      id,
    );
    expect(withContext.context).toEqual({ locale: "en" });
    expect(withContext.requestIp).toBe("127.0.0.1");
    const bareId = newId("server-bare");
    const bare = await storeAndRead(
      s,
      "/v1/track",
      { userId: "u", event: "x", messageId: bareId },
      { "x-write-key": s.keys.server, "user-agent": "Backend/1.0" },
      bareId,
    );
    const ctx = (bare.context ?? {}) as Json;
    expect(ctx.ip).toBeUndefined();
    expect(ctx.userAgent).toBeUndefined();
  });

  test("X-Forwarded-For and X-Real-IP are ignored without trustProxy", async () => {
    const id = newId("no-trust");
    const e = await storeAndRead(
      s,
      "/api/s/track",
      { userId: "u", event: "x", messageId: id },
      {
        "x-write-key": s.keys.browser,
        "x-forwarded-for": "203.0.113.7",
        "x-real-ip": "203.0.113.8",
      },
      id,
    );
    expect(e.requestIp).toBe("127.0.0.1");
    expect((e.context as Json).ip).toBe("127.0.0.1");
  });

  test("sourceId and keyId are stored with each event", async () => {
    const ids = [newId("ids-web"), newId("ids-other")];
    const web = await storeAndRead(
      s,
      "/v1/track",
      { userId: "u", event: "x", messageId: ids[0] },
      {
        "x-write-key": s.keys.browser,
      },
      ids[0]!,
    );
    const other = await storeAndRead(
      s,
      "/v1/track",
      { userId: "u", event: "x", messageId: ids[1] },
      {
        "x-write-key": s.keys.other,
      },
      ids[1]!,
    );
    expect(web).toMatchObject({ sourceId: "web", keyId: "wk_browser" });
    expect(other).toMatchObject({ sourceId: "other", keyId: "wk_other" });
  });

  test("a client cannot forge sourceId or keyId", async () => {
    const id = newId("forged");
    const e = await storeAndRead(
      s,
      "/v1/track",
      { userId: "u", event: "x", messageId: id, sourceId: "other", keyId: "wk_other" },
      { "x-write-key": s.keys.server },
      id,
    );
    expect(e).toMatchObject({ sourceId: "web", keyId: "wk_server" });
  });
});

describe("writeKey fields are removed", () => {
  test("from a single event that carried its key in the body", async () => {
    const id = newId("strip-single");
    const e = await storeAndRead(
      s,
      "/v1/track",
      { userId: "u", event: "x", messageId: id, writeKey: s.keys.server },
      {},
      id,
    );
    expect(e).not.toHaveProperty("writeKey");
    expect(JSON.stringify(e)).not.toContain(s.keys.server);
  });

  test("from a batch's events and the batch itself", async () => {
    const id = newId("strip-batch");
    const res = await s.post("/v1/batch", {
      writeKey: s.keys.server,
      batch: [{ type: "track", userId: "u", event: "x", messageId: id, writeKey: "wk_server:***" }],
    });
    expect(res.status).toBe(200);
    const [e] = await storedWithId(s, id);
    expect(e).not.toHaveProperty("writeKey");
    expect(JSON.stringify(e)).not.toContain(s.keys.server);
  });
});

describe("with server.trustProxy", () => {
  let p: TestServer;
  beforeAll(async () => {
    p = await startTestServer({
      config: { server: { port: 0, host: "127.0.0.1", dataDir: "./data", trustProxy: true } },
    });
  });
  afterAll(() => p.cleanup());

  test("the first X-Forwarded-For address is the request's address", async () => {
    const id = newId("xff");
    const e = await storeAndRead(
      p,
      "/api/s/track",
      { userId: "u", event: "x", messageId: id },
      { "x-write-key": p.keys.browser, "x-forwarded-for": "203.0.113.7, 10.0.0.1" },
      id,
    );
    expect(e.requestIp).toBe("203.0.113.7");
    expect((e.context as Json).ip).toBe("203.0.113.7");
  });

  test("X-Real-IP is used when there is no X-Forwarded-For", async () => {
    const id = newId("real-ip");
    const e = await storeAndRead(
      p,
      "/v1/track",
      { userId: "u", event: "x", messageId: id },
      { "x-write-key": p.keys.server, "x-real-ip": "203.0.113.8" },
      id,
    );
    expect(e.requestIp).toBe("203.0.113.8");
  });

  test("without either header the socket address is used", async () => {
    const id = newId("socket");
    const e = await storeAndRead(
      p,
      "/v1/track",
      { userId: "u", event: "x", messageId: id },
      { "x-write-key": p.keys.server },
      id,
    );
    expect(e.requestIp).toBe("127.0.0.1");
  });
});
