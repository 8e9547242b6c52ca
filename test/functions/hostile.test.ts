import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { startTestServer, type TestServer } from "../support/server.ts";

// User code is hostile (SPEC 7): whatever it throws, returns or stores, the call
// answers at once with an exec-log error, within the quotas, and the server goes on.

const THROWS: Record<string, string> = {
  proxy: `throw new Proxy({}, { get() { throw new Error("trap"); }, has() { throw new Error("trap"); },
    getPrototypeOf() { throw new Error("trap"); } });`,
  nullproto: `throw Object.assign(Object.create(null), { message: Object.create(null), name: 5 });`,
  bare: `throw Object.create(null);`,
  revoked: `const r = Proxy.revocable({}, {}); r.revoke(); throw r.proxy;`,
  string: `throw "just a string";`,
  symbol: `throw Symbol("sym");`,
  object: `throw { code: 5 };`,
  huge: `throw "x".repeat(5_000_000);`,
};

const FILES: Record<string, string> = {
  "fn/add.js": "export default (e) => { e.added = true; };",
  "fn/many.js": `export default (e) => Array.from({ length: e.properties.n }, (_, i) => ({ ...e, i }));`,
  "fn/proxyret.js": `export default () => new Proxy({}, { ownKeys() { throw new Error("trap"); },
    get() { throw new Error("trap"); }, getPrototypeOf() { throw new Error("trap"); } });`,
  "fn/store.js": `export default async (e, ctx) => {
    const out = {};
    const attempt = async (name, f) => { try { await f(); out[name] = "ok"; } catch (err) { out[name] = err.name + ": " + err.message; } };
    await attempt("big", () => ctx.store.set("big", "x".repeat(70_000)));
    await attempt("fits", () => ctx.store.set("fits", "x".repeat(60_000)));
    await attempt("longKey", () => ctx.store.set("k".repeat(2000), 1));
    e.store = out;
    e.mine = await ctx.store.get("fits").then((v) => v?.length);
  };`,
  "fn/other.js": `export default async (e, ctx) => { e.seen = (await ctx.store.get("fits")) ?? null; };`,
  // Leaves an interval behind that logs, then (next call) waits while it would fire.
  "fn/leaky.js": `export default async (e) => {
    if (e.properties.leave) setInterval(() => console.log("leftover"), 5);
    else await new Promise((r) => setTimeout(r, 100));
  };`,
  // Leaves Workers of its own spinning after the call: no timeout sees them.
  "fn/hog.js": `export default () => {
    const url = URL.createObjectURL(new Blob(["for (;;) {}"], { type: "application/javascript" }));
    for (let i = 0; i < 3; i++) new Worker(url);
  };`,
  ...Object.fromEntries(
    Object.entries(THROWS).map(([name, body]) => [
      `fn/throw-${name}.js`,
      `export default () => { ${body} };`,
    ]),
  ),
};

const con = (id: string, functions: string[]) => ({
  id,
  source: "web",
  destination: { type: "device" },
  functions,
});

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({
    files: FILES,
    config: {
      limits: { maxBatchEvents: 50 },
      functionRuntime: { workers: 1 },
      functions: [
        { id: "add", file: "./fn/add.js" },
        { id: "many", file: "./fn/many.js" },
        { id: "proxyret", file: "./fn/proxyret.js" },
        { id: "store", file: "./fn/store.js" },
        { id: "other", file: "./fn/other.js" },
        { id: "leaky", file: "./fn/leaky.js" },
        { id: "hog", file: "./fn/hog.js" },
        ...Object.keys(THROWS).map((name) => ({
          id: `throw-${name}`,
          file: `./fn/throw-${name}.js`,
          timeoutMs: 20_000,
        })),
      ],
      connections: [
        con("c_many", ["many"]),
        con("c_proxyret", ["proxyret", "add"]),
        con("c_store", ["store"]),
        con("c_other", ["other"]),
        con("c_leaky", ["leaky"]),
        con("c_hog", ["hog"]),
        ...Object.keys(THROWS).map((name) => con(`c_throw_${name}`, [`throw-${name}`, "add"])),
      ],
    },
  });
});
afterAll(() => s.cleanup());

async function run(conId: string, properties: Record<string, unknown> = {}) {
  const started = performance.now();
  const res = await s.post(
    `/api/funcs/${conId}`,
    { type: "track", event: "e", userId: "u", properties },
    { "x-write-key": s.keys.server },
  );
  const ms = performance.now() - started;
  // biome-ignore lint/suspicious/noExplicitAny: the answer is checked field by field
  return { status: res.status, body: (await res.json()) as any, ms };
}

const EXPECTED_MESSAGES: Record<string, RegExp> = {
  proxy: /cannot be read/,
  nullproto: /\[object Object\]/,
  bare: /non-error value was thrown: \{\}/,
  revoked: /cannot be read/,
  string: /^just a string$/,
  symbol: /^Symbol\(sym\)$/,
  object: /^a non-error value was thrown: \{"code":5\}$/,
  huge: /^x{4096}…$/,
};

for (const name of Object.keys(THROWS)) {
  test(`a thrown ${name} is an exec-log error at once; the chain goes on`, async () => {
    const { status, body, ms } = await run(`c_throw_${name}`);
    expect(status).toBe(200);
    // Well under the 20 s timeout: the call was not left hanging.
    expect(ms).toBeLessThan(3000);
    expect(body.execLog[0]).toMatchObject({
      functionId: `throw-${name}`,
      error: { name: expect.any(String), message: expect.stringMatching(EXPECTED_MESSAGES[name]!) },
    });
    expect(body.events[0].added).toBe(true);
  });
}

test("a returned Proxy whose traps throw is an exec-log error; the chain goes on", async () => {
  const { status, body } = await run("c_proxyret");
  expect(status).toBe(200);
  // (Awaiting the result reads its `then`: the trap throws there already.)
  expect(body.execLog[0]).toMatchObject({ functionId: "proxyret", error: { message: "trap" } });
  expect(body.events).toEqual([
    { type: "track", event: "e", userId: "u", properties: {}, added: true },
  ]);
});

test("a function may return at most maxBatchEvents events", async () => {
  const fits = await run("c_many", { n: 50 });
  expect(fits.body.events).toHaveLength(50);
  const over = await run("c_many", { n: 1_000_000 });
  expect(over.status).toBe(200);
  expect(over.body.execLog[0].error).toEqual({
    name: "RangeError",
    message: "returned 1000000 events; a function may return at most 50 (limits.maxBatchEvents)",
  });
  // The event goes on as it was before the function.
  expect(over.body.events).toEqual([
    { type: "track", event: "e", userId: "u", properties: { n: 1_000_000 } },
  ]);
});

test("store quotas answer with clear errors; another connection's function sees none of it", async () => {
  const { body } = await run("c_store");
  expect(body.events[0].store).toEqual({
    big: expect.stringMatching(
      /^StoreQuotaError: store value for "big" is 70002 bytes as JSON; at most 65536/,
    ),
    fits: "ok",
    longKey: expect.stringMatching(/^StoreQuotaError: store key is 2000 bytes; at most 1024/),
  });
  expect(body.events[0].mine).toBe(60_000);
  expect((await run("c_other")).body.events[0].seen).toBeNull();
});

test("timers a call leaves behind end with it", async () => {
  expect((await run("c_leaky", { leave: true })).status).toBe(200);
  const next = await run("c_leaky", { leave: false });
  expect(next.status).toBe(200);
  expect(next.body.logs).toEqual([]);
});

test("a host that keeps burning CPU with no call to run is restarted; the connection comes back", async () => {
  expect((await run("c_hog")).status).toBe(200);
  const deadline = Date.now() + 30_000;
  const log = () => readFileSync(s.logFile, "utf8");
  while (!log().includes("with no call to run; restarting it") && Date.now() < deadline) {
    await Bun.sleep(100);
  }
  expect(log()).toMatch(
    /function host of connection c_hog used [\d.]+ cores for [\d.]+ s with no call to run; restarting it/,
  );
  const again = Date.now() + 20_000;
  let status = 0;
  while (status !== 200 && Date.now() < again) status = (await run("c_store")).status;
  expect(status).toBe(200);
}, 60_000);
