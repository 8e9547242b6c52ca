import { afterEach, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hashWriteKey } from "../../src/auth/keys.ts";
import { exitCode, type RunningCli, startCli, startedPort } from "../support/process.ts";
import { runCli, storedEvents } from "../support/server.ts";

// SPEC 2: `sluice serve` with no config file creates ./sluice.yaml with one source and a
// fresh browser key and server key, prints both keys once (only hashes are written),
// and starts. `sluice init` does the same without starting, and never overwrites.

const dirs: string[] = [];
const running: RunningCli[] = [];
afterEach(() => {
  for (const r of running.splice(0)) r.proc.kill(9);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function emptyDir() {
  const dir = mkdtempSync(join(tmpdir(), "sluice-init-"));
  dirs.push(dir);
  return dir;
}

/** The environment of a user with no sluice settings; port 0 so tests never collide. */
const env = { PORT: "0", SLUICE_CONFIG: "", SLUICE_DATA_DIR: "" };

function printedKeys(output: string) {
  const browser = /browser key: (\S+)/.exec(output)?.[1];
  const server = /server key: +(\S+)/.exec(output)?.[1];
  expect(browser).toBeDefined();
  expect(server).toBeDefined();
  return { browser: browser!, server: server! };
}

interface WriteKeyEntry {
  id: string;
  type: string;
  hash?: string;
  key?: string;
}

function writeKeysIn(file: string): WriteKeyEntry[] {
  const config = Bun.YAML.parse(readFileSync(file, "utf8")) as {
    sources: { writeKeys: WriteKeyEntry[] }[];
  };
  expect(config.sources).toHaveLength(1);
  return config.sources[0]!.writeKeys;
}

function occurrences(text: string, part: string) {
  return text.split(part).length - 1;
}

test("serve with no config creates ./sluice.yaml with hashed keys, prints them once, and they work", async () => {
  const cwd = emptyDir();
  const serve = startCli(["serve"], { cwd, env });
  running.push(serve);
  const port = await startedPort(serve);
  const url = `http://127.0.0.1:${port}`;
  const out = serve.output();
  const keys = printedKeys(out);
  expect(occurrences(out, keys.browser)).toBe(1);
  expect(occurrences(out, keys.server)).toBe(1);

  const file = join(cwd, "sluice.yaml");
  const text = readFileSync(file, "utf8");
  // Only hashes at rest: neither key, nor its secret part, is in the file.
  for (const key of [keys.browser, keys.server]) {
    expect(text).not.toContain(key);
    expect(text).not.toContain(key.split(":")[1]!);
  }
  const entries = writeKeysIn(file);
  expect(entries.map((k) => k.type).sort()).toEqual(["browser", "server"]);
  for (const k of entries) {
    expect(k.key).toBeUndefined();
    expect(k.hash).toMatch(/^sha256:[0-9a-f]{64}$/);
  }
  expect(entries.find((k) => k.type === "browser")!.hash).toBe(hashWriteKey(keys.browser));
  expect(entries.find((k) => k.type === "server")!.hash).toBe(hashWriteKey(keys.server));

  // The browser key works from a web page's point of view, the server key server-to-server.
  const page = await fetch(`${url}/v1/page`, {
    method: "POST",
    headers: {
      "content-type": "text/plain",
      authorization: `Basic ${btoa(`${keys.browser}:`)}`,
    },
    body: JSON.stringify({ anonymousId: "a1", name: "Home", messageId: "init-browser" }),
  });
  expect(page.status).toBe(200);
  const s2s = await fetch(`${url}/api/s/s2s/track`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-write-key": keys.server },
    body: JSON.stringify({ event: "Server Side", userId: "u1", messageId: "init-server" }),
  });
  expect(s2s.status).toBe(200);
  // Types are kept: the browser key is refused on the server-to-server endpoint.
  const wrongType = await fetch(`${url}/api/s/s2s/track`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-write-key": keys.browser },
    body: JSON.stringify({ event: "Server Side", userId: "u1" }),
  });
  expect(wrongType.status).toBe(401);

  serve.proc.kill("SIGTERM");
  expect(await exitCode(serve.proc)).toBe(0);
  // The data dir of the new config is ./data beside it.
  const stored = await storedEvents(join(cwd, "data"));
  expect(stored.map((e) => [e.messageId, e.sourceId])).toEqual([
    ["init-browser", "default"],
    ["init-server", "default"],
  ]);
  // The secrets never reach the log output either (only the one-time print).
  expect(occurrences(serve.output(), keys.server.split(":")[1]!)).toBe(1);

  // A second start uses the file as it is: no new keys, nothing printed.
  const again = startCli(["serve"], { cwd, env });
  running.push(again);
  await startedPort(again);
  expect(again.output()).not.toContain("key:");
  expect(readFileSync(file, "utf8")).toBe(text);
  again.proc.kill("SIGTERM");
  expect(await exitCode(again.proc)).toBe(0);
}, 20_000);

test("init writes a valid config with fresh keys, and refuses to overwrite one", async () => {
  const cwd = emptyDir();
  const first = await runCli(["init"], env, cwd);
  expect(first.code).toBe(0);
  const keys = printedKeys(first.stdout);
  const file = join(cwd, "sluice.yaml");
  const text = readFileSync(file, "utf8");
  expect(text).not.toContain(keys.browser);
  expect(text).not.toContain(keys.server);
  expect(writeKeysIn(file).map((k) => k.hash)).toEqual([
    hashWriteKey(keys.browser),
    hashWriteKey(keys.server),
  ]);
  const check = await runCli(["check"], env, cwd);
  expect(check.code).toBe(0);
  // init only writes the file: nothing was started.
  expect(existsSync(join(cwd, "data"))).toBe(false);

  const second = await runCli(["init"], env, cwd);
  expect(second.code).not.toBe(0);
  expect(second.stderr).toContain("exists; not overwriting");
  expect(second.stdout).not.toContain("key:");
  expect(readFileSync(file, "utf8")).toBe(text);

  // Also at an explicit path.
  const explicit = join(cwd, "other.yaml");
  expect((await runCli(["init", "--config", explicit], env, cwd)).code).toBe(0);
  expect((await runCli(["init", "--config", explicit], env, cwd)).code).not.toBe(0);
}, 15_000);

test("serve with an explicit --config that does not exist fails (exit 2) and creates nothing", async () => {
  const cwd = emptyDir();
  const res = await runCli(["serve", "--config", join(cwd, "missing.yaml")], env, cwd);
  expect(res.code).toBe(2);
  expect(res.stderr).toContain("file not found");
  expect(existsSync(join(cwd, "missing.yaml"))).toBe(false);
  expect(existsSync(join(cwd, "sluice.yaml"))).toBe(false);
});
