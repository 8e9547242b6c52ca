import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startTestServer, type TestServer } from "../support/server.ts";

const FILES: Record<string, string> = {
  "fn/add.js": "export default (e) => { e.added = true; };",
  "fn/loop.js": "export default () => { for (;;) {} };",
  "fn/hang.js": "export default () => new Promise(() => {});",
  "fn/slow.js": "export default () => new Promise((r) => setTimeout(r, 300));",
  "fn/bomb.js": "export default () => { const a = []; for (;;) a.push(new Array(1e6)); };",
  "fn/exit.js": "export default () => { process.exit(1); };",
  "fn/broken.js": "export default (e) => { e.x = ; };",
  "fn/count.js": `export default async (e, ctx) => {
    const n = ((await ctx.store.get("runs")) ?? 0) + 1;
    await ctx.store.set("runs", n);
    e.runs = n;
  };`,
};

const con = (id: string, functions: string[]) => ({
  id,
  source: "web",
  // Not delivered by the server: these tests call the chains only through /api/funcs.
  destination: { type: "device" },
  functions,
});

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({
    files: FILES,
    config: {
      functionRuntime: { workers: 2, maxMemoryMb: 256 },
      functions: [
        { id: "add", file: "./fn/add.js" },
        { id: "loop", file: "./fn/loop.js", timeoutMs: 500 },
        { id: "hang", file: "./fn/hang.js", timeoutMs: 300 },
        { id: "slow", file: "./fn/slow.js", timeoutMs: 1000 },
        // Its timeout is far away: the memory limit must stop it first.
        { id: "bomb", file: "./fn/bomb.js", timeoutMs: 20_000 },
        { id: "exit", file: "./fn/exit.js" },
        { id: "broken", file: "./fn/broken.js" },
        { id: "count", file: "./fn/count.js" },
      ],
      connections: [
        con("c_add", ["add"]),
        con("c_loop", ["add", "loop", "add"]),
        con("c_hang", ["hang"]),
        con("c_slow", ["slow"]),
        con("c_bomb", ["bomb"]),
        con("c_exit", ["exit", "add"]),
        con("c_broken", ["broken", "add"]),
        con("c_count", ["count"]),
      ],
    },
  });
});
afterAll(() => s.cleanup());

const run = (conId: string) =>
  s.post(
    `/api/funcs/${conId}`,
    { type: "track", event: "e", userId: "u" },
    {
      "x-write-key": s.keys.server,
    },
  );

/** The JSON answer of a function call, as a client reads it. */
const answer = async (res: Response) => JSON.parse(await res.text());

/** Polls /health until `until` settles; returns the slowest answer in ms. */
async function slowestHealth(until: Promise<unknown>): Promise<number> {
  let done = false;
  void until.finally(() => {
    done = true;
  });
  let slowest = 0;
  while (!done) {
    const started = performance.now();
    const res = await fetch(`${s.url}/health`);
    expect(res.status).toBe(200);
    slowest = Math.max(slowest, performance.now() - started);
    await Bun.sleep(50); // a sampling interval: the server's answers over time are measured
  }
  return slowest;
}

test("an endless loop is cut at its timeout with 504; the server answers meanwhile", async () => {
  const started = performance.now();
  const call = run("c_loop");
  const slowest = await slowestHealth(call);
  const res = await call;
  expect(res.status).toBe(504);
  expect(await res.json()).toMatchObject({ error: expect.stringContaining("loop") });
  expect(performance.now() - started).toBeLessThan(3000);
  expect(slowest).toBeLessThan(250);
  // The worker was replaced: the next calls succeed.
  for (let i = 0; i < 3; i++) {
    const next = await run("c_add");
    expect(next.status).toBe(200);
    expect((await answer(next)).events).toEqual([
      { type: "track", event: "e", userId: "u", added: true },
    ]);
  }
});

test("a function that never settles is cut at its timeout too", async () => {
  const res = await run("c_hang");
  expect(res.status).toBe(504);
  expect((await run("c_add")).status).toBe(200);
});

test("calls queued past the pipeline's limit get 504; those in time run, the host stays", async () => {
  // Two workers, 300 ms a call, a 1 s limit: the last of ten would start after 1.2 s.
  const answers = await Promise.all(Array.from({ length: 10 }, () => run("c_slow")));
  const statuses = answers.map((r) => r.status).sort();
  expect(statuses.filter((x) => x === 200).length).toBeGreaterThanOrEqual(6);
  expect(statuses.filter((x) => x === 504).length).toBeGreaterThanOrEqual(1);
  expect(statuses.every((x) => x === 200 || x === 504)).toBe(true);
  expect(readFileSync(s.logFile, "utf8")).not.toContain("restarting");
  expect((await run("c_add")).status).toBe(200);
});

test("a memory bomb gets a 5xx and the server keeps serving", async () => {
  const call = run("c_bomb");
  const slowest = await slowestHealth(call);
  const res = await call;
  expect(res.status).toBeGreaterThanOrEqual(500);
  expect(await res.json()).toEqual({
    error: expect.stringMatching(/^error# [0-9a-f]+: internal error$/),
  });
  expect(slowest).toBeLessThan(250);
  const ingest = await s.post(
    "/v1/track",
    { event: "after", userId: "u" },
    {
      "x-write-key": s.keys.server,
    },
  );
  expect(ingest.status).toBe(200);
  // The function host is restarted: functions run again.
  const next = await run("c_add");
  expect(next.status).toBe(200);
  const log = readFileSync(s.logFile, "utf8");
  expect(log).toContain("memory limit");
});

test("process.exit in a function is an error of that function, not a crash", async () => {
  const res = await run("c_exit");
  expect(res.status).toBe(200);
  const body = await answer(res);
  expect(body.execLog[0]).toMatchObject({ functionId: "exit", error: { name: "Error" } });
  expect(body.events[0].added).toBe(true);
});

test("a function file that fails to load is logged at start and is an error in the chain", async () => {
  const log = readFileSync(s.logFile, "utf8");
  expect(log).toContain("function broken failed to load from");
  expect(log).toContain(join(s.dir, "fn", "broken.js"));
  const res = await run("c_broken");
  expect(res.status).toBe(200);
  const body = await answer(res);
  expect(body.execLog[0]).toMatchObject({
    functionId: "broken",
    error: { name: expect.any(String) },
  });
  expect(body.events[0].added).toBe(true);
});

test("the store persists across a restart", async () => {
  expect((await answer(await run("c_count"))).events[0].runs).toBe(1);
  expect((await answer(await run("c_count"))).events[0].runs).toBe(2);
  await s.restart();
  expect((await answer(await run("c_count"))).events[0].runs).toBe(3);
});

test("with functions running, the server process is not dumpable (its environ is root's)", async () => {
  // The test process is the server here: ask the kernel about it directly.
  const { dlopen, FFIType } = await import("bun:ffi");
  const libc = dlopen("libc.so.6", {
    prctl: {
      args: [FFIType.i32, FFIType.u64, FFIType.u64, FFIType.u64, FFIType.u64],
      returns: FFIType.i32,
    },
  });
  const PR_GET_DUMPABLE = 3;
  expect(libc.symbols.prctl(PR_GET_DUMPABLE, 0n, 0n, 0n, 0n)).toBe(0);
  libc.close();
});
