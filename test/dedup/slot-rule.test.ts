import { expect, test } from "bun:test";
import { copyFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { SLOT_OPTS, slotKeys } from "./slot-keys.ts";
import { dedupStores } from "./stores.ts";

// A filter copy on disk covers the slots whose runs were written when it was taken: a
// restart loads it and re-reads only the runs after it. So a run is written once, and a
// restarted store puts its new keys in a slot after every run on disk and every slot a
// copy covers, whatever its clock says (SqliteDedupStore.open). A store that appended to
// such a slot instead would fail to write those keys (or, had the run been written,
// hide them behind the copy after the next crash): seen as new, stored twice.
//
// Here the clock is the store's own (1 s slots, 4 a slice): a copy taken after the first
// run, more runs across a slice boundary, then restarts at the copy's time, after a
// kill -9 of the writing process and after a clean stop; every key stays a duplicate.

const CHILD = join(import.meta.dir, "slot-child.ts");
const { tempDir, open, close } = dedupStores(60);

/** The start of a slice (4 s), so the slots below are its 3rd and 4th, then the next slice's 1st. */
const SLICE = Math.floor(Date.UTC(2025, 0, 1, 12) / 4000) * 4000;
const T0 = SLICE + 2_500;

type Step = { at: number } | { remember: string; n: number } | { flush: true } | { copies: true };

/** Runs the steps in a child process, then kills it (-9) without a clean stop. */
async function crashAfter(
  dir: string,
  steps: Step[],
  snapshotMinKeys = SLOT_OPTS.snapshotMinKeys,
): Promise<string> {
  const args = [dir, JSON.stringify(steps), String(snapshotMinKeys)];
  const proc = Bun.spawn([process.execPath, CHILD, ...args], {
    stdout: "pipe",
    stderr: "pipe",
  });
  let out = "";
  const read = (async () => {
    for await (const chunk of proc.stdout as unknown as AsyncIterable<Uint8Array>) {
      out += new TextDecoder().decode(chunk);
    }
  })();
  const deadline = Date.now() + 30_000;
  while (!/^(done|error: .*)$/m.test(out) && proc.exitCode === null && Date.now() < deadline) {
    await Bun.sleep(5);
  }
  proc.kill(9);
  await proc.exited;
  await read;
  const stderr = await new Response(proc.stderr).text();
  expect({ signal: proc.signalCode, stderr }).toEqual({ signal: "SIGKILL", stderr: "" });
  return out;
}

const ids = (prefix: string, n: number) => slotKeys(prefix, n).map((k) => k.messageId);

test("after a filter copy, more runs across a slice boundary and restarts at the copy's time (kill -9, clean): every key is still a duplicate", async () => {
  const dir = tempDir();
  // 1000 keys in slot 2 of the slice, written: the filter is copied (it covers slot 2).
  // Then 300 keys go to slot 3 (the store never goes back to a written slot) and 300 to
  // the next slice's slot 0: no copy covers them (600 < 1000 keys since the copy).
  const first = await crashAfter(dir, [
    { at: T0 },
    { remember: "a", n: 1000 },
    { flush: true },
    { copies: true },
    { remember: "b", n: 300 },
    { at: T0 + 1_500 },
    { remember: "c", n: 300 },
    { flush: true },
  ]);
  expect(first).toBe("done\n");

  // Restarted at the copy's time, crashed again after writing keys of its own.
  const second = await crashAfter(dir, [{ at: T0 }, { remember: "d", n: 300 }, { flush: true }]);
  expect(second).toBe("done\n");

  let now = T0;
  const opts = { ...SLOT_OPTS, now: () => now };
  const all = [...ids("a", 1000), ...ids("b", 300), ...ids("c", 300), ...ids("d", 300)];
  const afterCrash = await open(dir, opts);
  expect(afterCrash.checkpoint()).toBe("4");
  expect((await afterCrash.seen("web", all)).size).toBe(all.length);
  expect((await afterCrash.seen("web", ids("never", 300))).size).toBe(0);

  // A clean stop (every segment copied), a restart at the same time, keys, a clean stop.
  afterCrash.remember(slotKeys("e", 300), "5");
  await close(afterCrash);
  const clean = await open(dir, opts);
  expect(clean.opened).toMatchObject({ reread: 0, rejected: [] });
  clean.remember(slotKeys("f", 300), "6");
  await close(clean);
  // A kill -9 after more keys at the same time, on top of the clean stop's copies.
  expect(await crashAfter(dir, [{ at: T0 }, { remember: "g", n: 300 }, { flush: true }])).toBe(
    "done\n",
  );

  const last = await open(dir, opts);
  expect(last.checkpoint()).toBe("7");
  const every = [...all, ...ids("e", 300), ...ids("f", 300), ...ids("g", 300)];
  expect((await last.seen("web", every)).size).toBe(every.length);
  expect((await last.seen("web", ids("never", 300))).size).toBe(0);
  // Each key kept the time it was seen through the restarts: all but c (seen 1.5 s later)
  // leave the window exactly 60 s after T0.
  now = T0 + 60_000 - 1;
  expect((await last.seen("web", every)).size).toBe(every.length);
  now = T0 + 60_000;
  expect([...(await last.seen("web", every))].sort()).toEqual(ids("c", 300).sort());
}, 60_000);

test("a power loss that takes dedup.db's last run but not the filter copy covering it: new keys go after the copy's slot", async () => {
  const dir = tempDir();
  const dbFiles = ["dedup.db", "dedup.db-wal"];
  const saved = tempDir();
  // 300 keys written in slot 2 (no copy yet): dedup.db as a power loss will leave it.
  const never = 1e9;
  expect(
    await crashAfter(dir, [{ at: T0 }, { remember: "a", n: 300 }, { flush: true }], never),
  ).toBe("done\n");
  for (const f of dbFiles) copyFileSync(join(dir, f), join(saved, f));
  // 600 keys in slot 3, then every segment copied (fsync'ed): the copies cover slot 3.
  expect(
    await crashAfter(
      dir,
      [{ at: T0 + 1_000 }, { remember: "b", n: 600 }, { flush: true }, { copies: true }],
      500,
    ),
  ).toBe("done\n");
  // The power loss: dedup.db's commits since the first process are gone (synchronous =
  // NORMAL), the filter copies are not.
  rmSync(join(dir, "dedup.db-shm"), { force: true });
  for (const f of dbFiles) copyFileSync(join(saved, f), join(dir, f));

  // The next process, at the same time (slot 3): start-up replays b from the log (the
  // checkpoint went back with the run), then records c; then it crashes too.
  expect(
    await crashAfter(
      dir,
      [{ at: T0 + 1_000 }, { remember: "b", n: 600 }, { remember: "c", n: 300 }, { flush: true }],
      never,
    ),
  ).toBe("done\n");
  // Its run must be after slot 3: a run in slot 3 would be taken as covered by the copies,
  // which lack c (seen as new after this crash: stored twice).
  const store = await open(dir, { ...SLOT_OPTS, now: () => T0 + 1_000 });
  const all = [...ids("a", 300), ...ids("b", 600), ...ids("c", 300)];
  expect((await store.seen("web", all)).size).toBe(all.length);
  expect((await store.seen("web", ids("never", 300))).size).toBe(0);
}, 60_000);
