import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { EVENT_TYPES, type EventType } from "../../src/events/schema.ts";
import { batchAnswer, expectError, newId, storedWithId } from "../http/table.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

let s: TestServer;
let auth: Record<string, string>;
beforeAll(async () => {
  s = await startTestServer();
  auth = { "x-write-key": s.keys.server };
});
afterAll(() => s.cleanup());

/** Sends `event` to `/api/s/event` (type from the payload); returns the response. */
const sendOne = (event: Record<string, unknown>) => s.post("/api/s/event", event, auth);

/** The smallest valid event of each type. */
const MINIMAL: Record<EventType, Record<string, unknown>> = {
  track: { type: "track", userId: "u", event: "Clicked" },
  page: { type: "page", anonymousId: "a" },
  screen: { type: "screen", anonymousId: "a" },
  identify: { type: "identify", userId: "u" },
  group: { type: "group", userId: "u", groupId: "g" },
  alias: { type: "alias", userId: "u", previousId: "p" },
};

/** An event valid for its type with `change` applied (undefined values delete the field). */
function variant(type: EventType, change: Record<string, unknown>): Record<string, unknown> {
  const e: Record<string, unknown> = { ...MINIMAL[type], messageId: newId(type) };
  for (const [k, v] of Object.entries(change)) {
    if (v === undefined) delete e[k];
    else e[k] = v;
  }
  return e;
}

/** Asserts `event` is refused on a single route (400) and listed as rejected in a batch. */
async function expectRefused(event: Record<string, unknown>, errorMentions?: string) {
  const single = await expectError(await sendOne(event), 400);
  if (errorMentions) expect(single.error).toContain(errorMentions);
  const batchRes = await s.post("/v1/batch", { batch: [MINIMAL.identify, event] }, auth);
  expect(batchRes.status).toBe(200);
  const batch = await batchAnswer(batchRes);
  const id = typeof event.messageId === "string" ? event.messageId : undefined;
  // An over-long messageId is the error itself: the server does not echo it back.
  const echoed = id !== undefined && id.length <= 100 ? id : undefined;
  expect(batch.rejected).toEqual([
    { index: 1, ...(echoed === undefined ? {} : { messageId: echoed }), error: expect.any(String) },
  ]);
  if (id !== undefined) expect(await storedWithId(s, id)).toHaveLength(0);
}

/** Asserts `event` is accepted and returns what was stored. */
async function expectStored(event: Record<string, unknown>) {
  const res = await sendOne(event);
  expect({ status: res.status, body: await res.json() }).toEqual({
    status: 200,
    body: { ok: true, success: true },
  });
  const stored = await storedWithId(s, event.messageId as string);
  expect(stored).toHaveLength(1);
  return stored[0]!;
}

describe("each type's required fields", () => {
  for (const type of EVENT_TYPES) {
    test(`a minimal ${type} is accepted`, async () => {
      expect(await expectStored(variant(type, {}))).toMatchObject({ type });
    });

    test(`a ${type} without userId and anonymousId is refused`, async () => {
      await expectRefused(variant(type, { userId: undefined, anonymousId: undefined }), "userId");
    });

    test(`a ${type} whose only id is userId:null is refused (null counts as absent)`, async () => {
      await expectRefused(variant(type, { userId: null, anonymousId: undefined }));
    });
  }

  test("track without event is refused", async () => {
    await expectRefused(variant("track", { event: undefined }), "event");
  });
  test("track with an empty event is refused", async () => {
    await expectRefused(variant("track", { event: "" }), "event");
  });
  test("track with an event name longer than 256 characters is refused", async () => {
    await expectRefused(variant("track", { event: "e".repeat(257) }), "event");
  });
  test("track with an event name of exactly 256 characters is accepted", async () => {
    await expectStored(variant("track", { event: "e".repeat(256) }));
  });
  test("group without groupId is refused", async () => {
    await expectRefused(variant("group", { groupId: undefined }), "groupId");
  });
  test("alias without previousId is refused", async () => {
    await expectRefused(variant("alias", { previousId: undefined }), "previousId");
  });
  test("alias with only an anonymousId (no userId) is refused", async () => {
    await expectRefused(variant("alias", { userId: undefined, anonymousId: "a" }), "userId");
  });
  test("an unknown type is refused", async () => {
    await expectRefused(variant("track", { type: "purchase" }), "type");
  });
});

describe("ids", () => {
  test("userId:null next to an anonymousId counts as absent: accepted, no userId stored", async () => {
    const stored = await expectStored(variant("page", { userId: null, anonymousId: "anon" }));
    expect(stored.anonymousId).toBe("anon");
    expect(stored).not.toHaveProperty("userId");
  });

  test("a numeric userId is stored as a string", async () => {
    const stored = await expectStored(variant("identify", { userId: 42 }));
    expect(stored.userId).toBe("42");
  });

  test("a numeric anonymousId and groupId are stored as strings", async () => {
    const stored = await expectStored(
      variant("group", { userId: undefined, anonymousId: 7, groupId: 9 }),
    );
    expect(stored).toMatchObject({ anonymousId: "7", groupId: "9" });
  });

  test("an object userId is refused", async () => {
    await expectRefused(variant("identify", { userId: { id: 1 } }), "userId");
  });

  test("a messageId of 100 characters is accepted", async () => {
    await expectStored(variant("track", { messageId: `m${"x".repeat(99)}` }));
  });

  test("a messageId longer than 100 characters is refused", async () => {
    await expectRefused(variant("track", { messageId: `m${"y".repeat(100)}` }), "messageId");
  });

  test("a messageId that is not a string is refused", async () => {
    await expectRefused(variant("track", { messageId: 12345 }), "messageId");
  });
});

describe("timestamps", () => {
  for (const field of ["timestamp", "originalTimestamp", "sentAt"]) {
    for (const bad of [
      "yesterday",
      "2024-13-45T00:00:00Z",
      "2024-01-01T25:00:00Z",
      1700000000000,
    ]) {
      test(`${field}: ${JSON.stringify(bad)} is refused`, async () => {
        await expectRefused(variant("track", { [field]: bad }), field);
      });
    }
  }

  for (const good of ["2024-05-01T12:30:00Z", "2024-05-01T12:30:00.123+02:00", "2024-05-01"]) {
    test(`timestamp ${good} is accepted`, async () => {
      const stored = await expectStored(variant("track", { timestamp: good }));
      expect(Date.parse(stored.timestamp as string)).toBe(Date.parse(good));
    });
  }
});

describe("object fields", () => {
  for (const field of ["properties", "traits", "context", "integrations"]) {
    for (const bad of ["text", 5, [1, 2], null]) {
      test(`${field}: ${JSON.stringify(bad)} is refused`, async () => {
        await expectRefused(variant("track", { [field]: bad }), field);
      });
    }
  }
});

test("unknown fields are kept as sent", async () => {
  const extra = { custom: { nested: [1, { deep: true }] }, flag: false, count: 0, note: null };
  const stored = await expectStored(variant("track", extra));
  expect(stored).toMatchObject(extra);
});

describe("__proto__ and constructor keys are data", () => {
  test("a top-level __proto__ object is stored as a plain key and pollutes nothing", async () => {
    const id = newId("proto");
    const raw = `{"type":"track","userId":"u","event":"x","messageId":"${id}","__proto__":{"polluted":true,"event":"y"},"constructor":{"prototype":{"polluted":true}},"properties":{"__proto__":{"polluted":true},"constructor":{"name":"c"}}}`;
    const res = await s.post("/api/s/event", raw, { ...auth, "content-type": "application/json" });
    expect(res.status).toBe(200);
    const [stored] = await storedWithId(s, id);
    expect(stored).toBeDefined();
    expect(Object.hasOwn(stored!, "__proto__")).toBe(true);
    expect(Object.getOwnPropertyDescriptor(stored, "__proto__")?.value).toEqual({
      polluted: true,
      event: "y",
    });
    expect(stored!.event).toBe("x");
    expect(Object.hasOwn(stored!, "constructor")).toBe(true);
    const props = stored!.properties as Record<string, unknown>;
    expect(Object.hasOwn(props, "__proto__")).toBe(true);
    expect(Object.hasOwn(props, "constructor")).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
  });

  test("an id supplied only through __proto__ does not satisfy validation", async () => {
    const id = newId("proto-id");
    const raw = `{"type":"track","event":"x","messageId":"${id}","__proto__":{"userId":"u","anonymousId":"a"}}`;
    await expectError(
      await s.post("/api/s/event", raw, { ...auth, "content-type": "application/json" }),
      400,
    );
    expect(await storedWithId(s, id)).toHaveLength(0);
  });

  test("a __proto__ in a batch's context stays data after the merge", async () => {
    const id = newId("proto-batch");
    const raw = `{"context":{"__proto__":{"ip":"6.6.6.6"},"locale":"en"},"batch":[{"type":"track","userId":"u","event":"x","messageId":"${id}"}]}`;
    const res = await s.post("/v1/batch", raw, {
      "x-write-key": s.keys.browser,
      "content-type": "application/json",
    });
    expect(res.status).toBe(200);
    const [stored] = await storedWithId(s, id);
    const context = stored!.context as Record<string, unknown>;
    expect(Object.hasOwn(context, "__proto__")).toBe(true);
    expect(context.locale).toBe("en");
    expect(context.ip).toBe("127.0.0.1"); // filled from the request, not inherited
    expect(({} as Record<string, unknown>).ip).toBeUndefined();
  });
});
