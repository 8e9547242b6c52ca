import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTestServer, type TestServer } from "../support/server.ts";

/** Returns whatever the event asks for (`properties.ret`), so one file covers every return value. */
const RET = `export default function (event) {
  const ret = event.properties?.ret;
  if (ret === "undefined") { event.touched = true; return undefined; }
  if (ret === "object") return { type: "track", event: "replaced" };
  if (ret === "split") return [{ event: "a" }, { event: "b" }];
  if (ret === "number") return 42;
  return ret;
}`;

const FILES: Record<string, string> = {
  "functions/ret.js": RET,
  "functions/add.js": "export default (e) => { e.properties = { ...e.properties, added: true }; };",
  "functions/throw.js": `export default (e) => { e.mutated = true; throw new TypeError("boom"); };`,
  "functions/split.js": `export default (e) => [{ ...e, part: 1 }, { ...e, part: 2 }];`,
  "functions/ctx.js": `export default async (e, ctx) => ({
    ...e,
    seen: {
      props: ctx.props,
      headers: ctx.headers,
      source: ctx.source,
      connection: ctx.connection,
      destination: ctx.destination,
      receivedAt: ctx.receivedAt.toISOString(),
      retries: ctx.retries,
      env: { ...process.env },
    },
  });`,
  "functions/logs.js": `export default (e, ctx) => {
    console.log("hello", { a: 1 });
    console.warn("careful");
    console.error(new Error("bad"));
    console.debug("details", 2, [3]);
    ctx.log.info("from ctx", { b: true });
    ctx.log.error("ctx error");
  };`,
  "functions/store.js": `export default async (e, ctx) => {
    const n = ((await ctx.store.get("counter")) ?? 0) + 1;
    await ctx.store.set("counter", n, "inf");
    await ctx.store.set("short", { x: [1, 2] }, "30s");
    await ctx.store.set("plain", "v");
    await ctx.store.set("days", true, "7d");
    e.counter = n;
    e.short = await ctx.store.get("short");
    e.ttl = {
      inf: await ctx.store.ttl("counter"),
      short: await ctx.store.ttl("short"),
      plain: await ctx.store.ttl("plain"),
      days: await ctx.store.ttl("days"),
      missing: await ctx.store.ttl("missing"),
    };
    await ctx.store.del("short");
    e.afterDel = (await ctx.store.get("short")) ?? null;
    e.badTtl = await ctx.store.set("x", 1, "soon").then(() => "accepted", (err) => err.name);
  };`,
  "functions/peek.js": `export default async (e, ctx) => { e.counter = await ctx.store.get("counter"); };`,
  "functions/fetch.js": `export default async (e, ctx) => {
    e.ok = await (await ctx.fetch(ctx.props.FAST)).text();
    e.slow = await ctx.fetch(ctx.props.SLOW, { timeoutMs: 100 }).then(() => "answered", (err) => err.name);
  };`,
  "functions/typed.ts": `interface Ev { type: string; properties?: Record<string, unknown>; typed?: true }
export const config = { timeoutMs: 2000 };
export default function typed(event: Ev): Ev {
  const out: Ev = { ...event, typed: true };
  return out;
}`,
};

const fn = (id: string, file: string, extra: Record<string, unknown> = {}) => ({
  id,
  file: `./functions/${file}`,
  ...extra,
});
const con = (id: string, functions: string[], extra: Record<string, unknown> = {}) => ({
  id,
  source: "web",
  // Not delivered by the server: these tests call the chains only through /api/funcs.
  destination: { type: "device" },
  functions,
  ...extra,
});

let s: TestServer;
let upstream: ReturnType<typeof Bun.serve>;
const MARKER = "SLUICE_TEST_SERVER_SECRET";

beforeAll(async () => {
  // The server's own environment must stay invisible to user code.
  process.env[MARKER] = "do-not-leak";
  upstream = Bun.serve({
    port: 0,
    async fetch(req) {
      // A slow server is what ctx.fetch's timeout is tested against.
      if (new URL(req.url).pathname === "/slow") await Bun.sleep(2000);
      return new Response("fast answer");
    },
  });
  const base = `http://127.0.0.1:${upstream.port}`;
  s = await startTestServer({
    files: FILES,
    config: {
      // The upstream below listens on loopback, which ctx.fetch refuses unless allowed.
      functionRuntime: { workers: 2, allowNetworks: ["127.0.0.1/32"] },
      functions: [
        fn("ret", "ret.js"),
        fn("add", "add.js"),
        fn("throw", "throw.js"),
        fn("split", "split.js"),
        fn("ctx", "ctx.js"),
        fn("logs", "logs.js"),
        fn("store", "store.js"),
        fn("peek", "peek.js"),
        fn("fetch", "fetch.js"),
        fn("typed", "typed.ts"),
      ],
      connections: [
        con("c_ret", ["ret"]),
        con("c_add_ret", ["add", "ret"]),
        con("c_ret_add", ["ret", "add"]),
        con("c_throw", ["throw", "add"]),
        con("c_split_early", ["split", "add"]),
        con("c_ctx", ["ctx"], { options: { mode: "test", n: 1 }, env: { API_TOKEN: "tok" } }),
        con("c_logs", ["logs"]),
        con("c_store", ["store"]),
        con("c_peek", ["peek"]),
        con("c_fetch", ["fetch"], { env: { FAST: `${base}/fast`, SLOW: `${base}/slow` } }),
        con("c_typed", ["typed"]),
        con("c_none", []),
        { ...con("c_other", ["add"]), source: "other" },
      ],
    },
  });
});
afterAll(async () => {
  delete process.env[MARKER];
  await s.cleanup();
  upstream.stop(true);
});

const run = async (conId: string, event: Record<string, unknown>, headers = {}) => {
  const res = await s.post(`/api/funcs/${conId}`, event, {
    "x-write-key": s.keys.server,
    ...headers,
  });
  const text = await res.text();
  return { res, status: res.status, body: text ? JSON.parse(text) : undefined };
};
const withRet = (ret: unknown) => ({ type: "track", event: "e", userId: "u", properties: { ret } });

describe("return values", () => {
  test("undefined passes the mutated event on", async () => {
    const { status, body } = await run("c_ret", withRet("undefined"));
    expect(status).toBe(200);
    expect(body.events).toEqual([{ ...withRet("undefined"), touched: true }]);
    expect(body.execLog).toEqual([{ eventIndex: 0, functionId: "ret", ms: expect.any(Number) }]);
    expect(body.logs).toEqual([]);
  });

  for (const ret of ["drop", null, false, []]) {
    test(`${JSON.stringify(ret)} drops the event and stops the chain`, async () => {
      const { status, body } = await run("c_ret_add", withRet(ret));
      expect(status).toBe(200);
      expect(body.events).toEqual([]);
      expect(body.execLog).toEqual([
        { eventIndex: 0, functionId: "ret", ms: expect.any(Number), dropped: true },
      ]);
    });
  }

  test("an object replaces the event", async () => {
    const { body } = await run("c_ret_add", withRet("object"));
    expect(body.events).toEqual([
      { type: "track", event: "replaced", properties: { added: true } },
    ]);
    expect(body.execLog.map((e: { functionId: string }) => e.functionId)).toEqual(["ret", "add"]);
  });

  test("an array from the last function splits the event", async () => {
    const { body } = await run("c_add_ret", withRet("split"));
    expect(body.events).toEqual([{ event: "a" }, { event: "b" }]);
    expect(body.execLog.every((e: { error?: unknown }) => !e.error)).toBe(true);
  });

  test("an array from an earlier function is an error; the event goes on unchanged", async () => {
    const event = { type: "track", event: "e", userId: "u" };
    const { body } = await run("c_split_early", event);
    expect(body.execLog[0]).toMatchObject({
      functionId: "split",
      error: { name: "Error", message: expect.stringContaining("only the last function") },
    });
    expect(body.execLog[1]).toEqual({ eventIndex: 0, functionId: "add", ms: expect.any(Number) });
    expect(body.events).toEqual([{ ...event, properties: { added: true } }]);
  });

  test("an unsupported value is an error in the exec log", async () => {
    const { body } = await run("c_ret", withRet("number"));
    expect(body.execLog[0].error.name).toBe("TypeError");
    expect(body.events).toEqual([withRet("number")]);
  });

  test("a throwing function is recorded; the chain goes on with the event as before it", async () => {
    const event = { type: "track", event: "e", userId: "u" };
    const { status, body } = await run("c_throw", event);
    expect(status).toBe(200);
    expect(body.execLog).toEqual([
      {
        eventIndex: 0,
        functionId: "throw",
        ms: expect.any(Number),
        error: { name: "TypeError", message: "boom" },
      },
      { eventIndex: 0, functionId: "add", ms: expect.any(Number) },
    ]);
    // The thrower's mutation is gone: it worked on a copy.
    expect(body.events).toEqual([{ ...event, properties: { added: true } }]);
  });

  test("a TypeScript function file runs", async () => {
    const { status, body } = await run("c_typed", { type: "track", event: "e", userId: "u" });
    expect(status).toBe(200);
    expect(body.events).toEqual([{ type: "track", event: "e", userId: "u", typed: true }]);
  });
});

describe("ctx", () => {
  test("props, headers without credentials, source, connection, destination, receivedAt, retries", async () => {
    const before = Date.now();
    const { body } = await run(
      "c_ctx",
      { type: "track", event: "e", userId: "u", writeKey: s.keys.server },
      { cookie: "session=1", "x-custom": "yes", "user-agent": "test-agent" },
    );
    const seen = body.events[0].seen;
    expect(seen.props).toEqual({ API_TOKEN: "tok" });
    expect(seen.headers["x-custom"]).toBe("yes");
    expect(seen.headers["user-agent"]).toBe("test-agent");
    for (const h of ["authorization", "x-write-key", "cookie"])
      expect(seen.headers[h]).toBeUndefined();
    expect(JSON.stringify(body)).not.toContain(s.keys.server);
    expect(seen.source).toEqual({ id: "web", name: "Website", type: "s2s" });
    expect(seen.connection).toEqual({ id: "c_ctx", options: { mode: "test", n: 1 } });
    expect(seen.destination).toEqual({ id: "c_ctx", type: "device" });
    expect(Date.parse(seen.receivedAt)).toBeGreaterThanOrEqual(before - 5);
    expect(seen.retries).toBe(0);
  });

  test("a browser key's events come from a browser source; Basic auth is removed too", async () => {
    const auth = `Basic ${Buffer.from(`${s.keys.browser}:`).toString("base64")}`;
    const res = await s.post(
      "/api/funcs/c_ctx",
      { type: "track", event: "e", userId: "u" },
      { authorization: auth },
    );
    const seen = JSON.parse(await res.text()).events[0].seen;
    expect(seen.source.type).toBe("browser");
    expect(seen.headers.authorization).toBeUndefined();
  });

  test("user code sees none of the server's environment", async () => {
    expect(process.env[MARKER]).toBe("do-not-leak");
    const { body } = await run("c_ctx", { type: "track", event: "e", userId: "u" });
    const env = body.events[0].seen.env;
    expect(env[MARKER]).toBeUndefined();
    expect(Object.keys(env)).not.toContain("HOME");
    expect(JSON.stringify(env)).not.toContain("do-not-leak");
  });

  test("console.* and ctx.log are captured as log entries", async () => {
    const { body } = await run("c_logs", { type: "track", event: "e", userId: "u" });
    const entry = (level: string, message: string, args: unknown[]) => ({
      level,
      functionId: "logs",
      functionType: "udf",
      message,
      args,
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(body.logs).toEqual([
      entry("info", "hello", [{ a: 1 }]),
      entry("warn", "careful", []),
      entry("error", "Error: bad", []),
      entry("debug", "details", [2, [3]]),
      entry("info", "from ctx", [{ b: true }]),
      entry("error", "ctx error", []),
    ]);
  });

  test("store: get/set/del/ttl with every ttl form, kept across calls, private to the function", async () => {
    const first = (await run("c_store", { type: "track", event: "e", userId: "u" })).body.events[0];
    expect(first.counter).toBe(1);
    expect(first.short).toEqual({ x: [1, 2] });
    expect(first.ttl.inf).toBe(-1);
    expect(first.ttl.short).toBeGreaterThan(28);
    expect(first.ttl.short).toBeLessThanOrEqual(30);
    expect(first.ttl.plain).toBeGreaterThan(31 * 86_400 - 5);
    expect(first.ttl.days).toBeGreaterThan(7 * 86_400 - 5);
    expect(first.ttl.missing).toBe(-2);
    expect(first.afterDel).toBeNull();
    expect(first.badTtl).toBe("TypeError");
    const second = (await run("c_store", { type: "track", event: "e", userId: "u" })).body
      .events[0];
    expect(second.counter).toBe(2);
    // Another connection's function has keys of its own: it does not see these.
    const peek = (await run("c_peek", { type: "track", event: "e", userId: "u" })).body.events[0];
    expect(peek).not.toHaveProperty("counter");
  });

  test("fetch works and times out", async () => {
    const { body } = await run("c_fetch", { type: "track", event: "e", userId: "u" });
    expect(body.events[0].ok).toBe("fast answer");
    expect(body.events[0].slow).toBe("TimeoutError");
  });
});

describe("the endpoint", () => {
  test("rate-limit headers, JSON content type, nothing stored", async () => {
    const { res } = await run("c_ret", withRet("undefined"));
    expect(res.headers.get("content-type")).toContain("application/json");
    expect(res.headers.get("x-ratelimit-limit")).toBeTruthy();
    const { storedEvents } = await import("../support/server.ts");
    expect(await storedEvents(s.dataDir)).toEqual([]);
  });

  test("function runs and errors are counted in /metrics", async () => {
    await run("c_throw", { type: "track", event: "e", userId: "u" });
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    const value = (line: string) =>
      Number(
        metrics
          .split("\n")
          .find((l) => l.startsWith(line))
          ?.split(" ")[1],
      );
    expect(value('sluice_function_runs_total{function="throw"}')).toBeGreaterThanOrEqual(1);
    expect(value('sluice_function_errors_total{function="throw"}')).toBeGreaterThanOrEqual(1);
    expect(value('sluice_function_errors_total{function="add"}')).toBe(0);
  });

  test("a connection without functions: 204 and no body", async () => {
    const res = await s.post(
      "/api/funcs/c_none",
      { type: "track" },
      { "x-write-key": s.keys.server },
    );
    expect(res.status).toBe(204);
    expect(await res.text()).toBe("");
  });

  test("unknown connection, another source's connection, missing or bad key: 401", async () => {
    const event = { type: "track", event: "e", userId: "u" };
    for (const [conId, headers] of [
      ["nope", { "x-write-key": s.keys.server }],
      ["c_other", { "x-write-key": s.keys.server }],
      ["c_ret", {}],
      ["c_ret", { "x-write-key": "wk_server:wrong" }],
    ] as const) {
      const res = await s.post(`/api/funcs/${conId}`, event, headers);
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ error: expect.any(String) });
    }
    // The other source's own key may run its connection.
    const own = await s.post("/api/funcs/c_other", event, { "x-write-key": s.keys.other });
    expect(own.status).toBe(200);
  });

  test("not JSON, malformed JSON, not an object: 400", async () => {
    const key = { "x-write-key": s.keys.server };
    const cases: [string, Record<string, string>][] = [
      ['{"type":"track"}', { "content-type": "text/plain" }],
      ['{"type":"track"}', {}],
      ['{"type":"track"}', { "content-type": "application/x-www-form-urlencoded" }],
      ['{"type":', { "content-type": "application/json" }],
      ["[1,2]", { "content-type": "application/json" }],
    ];
    for (const [body, headers] of cases) {
      const res = await s.post("/api/funcs/c_ret", body, { ...key, ...headers });
      expect(res.status).toBe(400);
      const answer = await res.json();
      expect(answer).toEqual({ error: expect.any(String) });
      expect(JSON.stringify(answer)).not.toContain("track");
    }
  });
});
