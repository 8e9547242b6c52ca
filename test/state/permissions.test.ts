import { afterEach, expect, test } from "bun:test";
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeDataDirPrivate } from "../../src/state/permissions.ts";
import { cleanedAfterEach } from "../support/process.ts";
import { makeTestConfig, startTestServer, type TestServer } from "../support/server.ts";

const spawned = cleanedAfterEach();

const mode = (path: string) => statSync(path).mode & 0o777;
const asRoot = process.getuid?.() === 0;

let s: TestServer | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await s?.cleanup();
  s = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Every path under `dir`, itself included. */
function walk(dir: string): string[] {
  const out = [dir];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

test("`sluice serve` keeps its data dir and everything it writes there private (0700 / 0600)", async () => {
  const made = makeTestConfig();
  dirs.push(made.dir);
  const server = await spawned.spawn(made.configFile);
  const res = await fetch(`${server.url}/v1/track`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-write-key": made.keys.server },
    body: JSON.stringify({ event: "e", userId: "u" }),
  });
  expect(res.status).toBe(200);
  const paths = walk(made.dataDir);
  expect(paths.some((p) => p.endsWith(".seg"))).toBe(true);
  expect(paths.some((p) => p.endsWith("state.db-wal"))).toBe(true);
  // Whether every path is private; false when one vanished between the listing and its
  // check: the running server renames its temporary files (a filter copy's `.tmp`) as it
  // goes, so the folder is listed and checked again, under the final names too.
  const allPrivate = (listed: string[]) => {
    let whole = true;
    for (const path of listed) {
      const st = statSync(path, { throwIfNoEntry: false });
      if (st === undefined) {
        whole = false;
        continue;
      }
      const want = st.isDirectory() ? "700" : "600";
      expect(`${path} ${(st.mode & 0o777).toString(8)}`).toBe(`${path} ${want}`);
    }
    return whole;
  };
  for (let i = 0; !allPrivate(i === 0 ? paths : walk(made.dataDir)) && i < 10; i++);
  expect(server.output()).not.toContain("open to other users");
});

test("an open data dir is made private at start, with a warning naming what was open", async () => {
  s = await startTestServer();
  await s.stop();
  chmodSync(s.dataDir, 0o755);
  const state = join(s.dataDir, "state.db");
  chmodSync(state, 0o644);
  const logDir = join(s.dataDir, "log");
  chmodSync(logDir, 0o777);
  await s.restart();
  expect(mode(s.dataDir)).toBe(0o700);
  expect(mode(state)).toBe(0o600);
  expect(mode(logDir)).toBe(0o700);
  const warning = readFileSync(s.logFile, "utf8")
    .split("\n")
    .find((l) => l.includes("were open to other users"));
  expect(warning).toBeDefined();
  // (The other files were made 0644 by this in-process server: no umask under the test runner.)
  expect(JSON.parse(warning!)).toMatchObject({
    level: 40,
    entries: expect.arrayContaining([`${s.dataDir} 0755`, `${state} 0644`, `${logDir} 0777`]),
  });
});

test.if(asRoot)("root fixes entries another user owns", () => {
  const dir = mkdtempSync(join(tmpdir(), "sluice-perm-"));
  dirs.push(dir);
  const data = join(dir, "data");
  mkdirSync(data, { mode: 0o755 });
  chmodSync(data, 0o755);
  const file = join(data, "theirs");
  writeFileSync(file, "x");
  chmodSync(file, 0o644);
  chownSync(file, 65534, 65534);
  expect(makeDataDirPrivate(data).fixed).toEqual([`${data} 0755`, `${file} 0644`]);
  expect(mode(file)).toBe(0o600);
});

test("a missing data dir is created 0700", () => {
  const dir = mkdtempSync(join(tmpdir(), "sluice-perm-"));
  dirs.push(dir);
  const data = join(dir, "nested", "data");
  expect(makeDataDirPrivate(data)).toEqual({ fixed: [], unfixable: [] });
  expect(mode(data)).toBe(0o700);
});

test("entries that go while the data dir is walked (a running server's temporary files) are skipped, not an error", async () => {
  const data = mkdtempSync(join(tmpdir(), "sluice-perm-race-"));
  dirs.push(data);
  mkdirSync(join(data, "dedup-filter"));
  // Another process makes and renames temporary files there as fast as it can.
  const renamer = Bun.spawn([
    "bash",
    "-c",
    'cd "$1" && for i in $(seq 1 200000); do touch "s$((i % 64)).tmp" && mv "s$((i % 64)).tmp" "s$((i % 64))"; done',
    "renamer",
    join(data, "dedup-filter"),
  ]);
  try {
    // Walks for 3 s, each a few hundred µs: without the skip, one of the first few hundred
    // meets an entry that went between its folder's listing and its visit.
    const deadline = performance.now() + 3000;
    let walks = 0;
    while (performance.now() < deadline && renamer.exitCode === null) {
      makeDataDirPrivate(data);
      walks++;
      if (walks % 50 === 0) await Bun.sleep(0);
    }
    expect(walks).toBeGreaterThan(100);
  } finally {
    renamer.kill(9);
    await renamer.exited;
  }
});
