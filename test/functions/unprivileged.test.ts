import { afterAll, beforeAll, expect, test } from "bun:test";
import { chownSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { BUN, MAIN, makeTestConfig } from "../support/server.ts";

// SPEC 7 without root: sluice cannot switch users, so functions run as the server's
// own user, who owns the config and the data dir. Landlock and seccomp alone must
// keep them out, and the start log must say what is weaker.

const NOBODY = 65534;
const ROOT = join(import.meta.dir, "..", "..");
// Needs root to start the server as another user, and a checkout that user can read.
const possible = process.getuid?.() === 0 && othersCanRead(ROOT);

function othersCanRead(dir: string): boolean {
  for (let d = dir; ; d = dirname(d)) {
    if ((statSync(d).mode & 0o005) !== 0o005) return false;
    if (d === dirname(d)) return true;
  }
}

const PEEK = `import { readFileSync, readdirSync } from "node:fs";
export default async (e, ctx) => {
  const p = ctx.props;
  const tries = {};
  const attempt = async (name, f) => {
    try { tries[name] = "ESCAPED: " + String(await f()).slice(0, 60); }
    catch (err) { tries[name] = "blocked: " + (err?.code ?? err?.name); }
  };
  await attempt("readConfig", () => readFileSync(p.CONFIG, "utf8"));
  await attempt("listDataDir", () => readdirSync(p.DATA).join(","));
  await attempt("readStateDb", () => readFileSync(p.DATA + "/state.db").length);
  await attempt("serverEnviron", () => readFileSync("/proc/" + process.ppid + "/environ", "utf8"));
  await attempt("killServer", () => process.kill(process.ppid, "SIGKILL"));
  await attempt("spawn", () => Bun.spawnSync(["true"]).exitCode);
  e.tries = tries;
  e.uid = process.getuid();
};`;

let made: ReturnType<typeof makeTestConfig>;
let proc: ReturnType<typeof Bun.spawn> | undefined;
let output = "";
let url = "";

beforeAll(async () => {
  if (!possible) return;
  made = makeTestConfig({ files: { "fn/peek.js": PEEK } });
  const config = JSON.parse(readFileSync(made.configFile, "utf8"));
  config.functions = [{ id: "peek", file: "./fn/peek.js" }];
  config.connections = [
    {
      id: "c_peek",
      source: "web",
      destination: { type: "device" },
      functions: ["peek"],
      env: { CONFIG: made.configFile, DATA: made.dataDir },
    },
  ];
  await Bun.write(made.configFile, JSON.stringify(config));
  const own = (path: string) => {
    chownSync(path, NOBODY, NOBODY);
    if (statSync(path).isDirectory()) for (const e of readdirSync(path)) own(join(path, e));
  };
  own(made.dir);
  proc = Bun.spawn([BUN, MAIN, "serve", "--config", made.configFile], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SLUICE_LOG_LEVEL: "info" },
    uid: NOBODY,
    gid: NOBODY,
    cwd: made.dir,
    stdout: "pipe",
    stderr: "pipe",
  });
  const collect = async (s: ReadableStream<Uint8Array>) => {
    for await (const c of s as unknown as AsyncIterable<Uint8Array>)
      output += new TextDecoder().decode(c);
  };
  void collect(proc.stdout as ReadableStream<Uint8Array>);
  void collect(proc.stderr as ReadableStream<Uint8Array>);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const m = /"port":(\d+)[^\n]*"msg":"sluice started"/.exec(output);
    if (m) {
      url = `http://127.0.0.1:${m[1]}`;
      return;
    }
    if (proc.exitCode !== null) break;
    await Bun.sleep(50);
  }
  throw new Error(`server did not start:\n${output}`);
}, 90_000);

afterAll(async () => {
  // Stopped gracefully: the server removes its hosts' private copies itself.
  proc?.kill("SIGTERM");
  if (proc) await Promise.race([proc.exited, Bun.sleep(10_000)]);
  proc?.kill(9);
  if (made) rmSync(made.dir, { recursive: true, force: true });
});

test.if(possible)(
  "a non-root server's functions, though of its own user, reach none of its files or processes",
  async () => {
    const res = await fetch(`${url}/api/funcs/c_peek`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-write-key": made.keys.server },
      body: JSON.stringify({ type: "track", event: "e", userId: "u" }),
    });
    expect(res.status).toBe(200);
    const event = (
      (await res.json()) as { events: { tries: Record<string, string>; uid: number }[] }
    ).events[0]!;
    expect(event.uid).toBe(NOBODY);
    expect(Object.entries(event.tries).filter(([, v]) => !v.startsWith("blocked"))).toEqual([]);
    expect(proc!.exitCode).toBeNull();
    expect((await fetch(`${url}/health`)).status).toBe(200);
    // What is weaker without root is said at start, and nothing else is missing.
    expect(output).toContain("functions run as the server's own user");
    const sandboxWarnings = output.split("\n").filter((l) => l.includes("function sandbox:"));
    expect(sandboxWarnings.map((l) => JSON.parse(l).msg)).toEqual([]);
  },
  60_000,
);
