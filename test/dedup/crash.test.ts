import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteDedupStore } from "../../src/dedup/sqlite.ts";
import { BATCH, batchKeys, loggedBatches, WINDOW_SECONDS } from "./crash-batches.ts";

// The dedup store killed (-9) at any moment: while a run is written, while the filter is
// copied to disk, while a segment is resized. After a crash, the keys the store had
// written are there at once (restart with keys from before the crash), and with the log
// tail replayed every logged key is a duplicate, nothing else.
//
// The store's time goes on from where the last process left it (not the wall clock) and
// stands still while the test checks, so the process after a check starts inside the
// slot (2.75 s) of the check's last run. Keys such a process appended to that run once
// hid, after its crash, behind the filter copies of the check's clean stop that claimed
// the slot: keys at or before the checkpoint were not seen (SqliteDedupStore.open).

const CHILD = join(import.meta.dir, "crash-child.ts");
const ROUNDS = 9;

/**
 * Rounds come in threes. 0: killed after 20-60 batches, anywhere (in a run's write, a
 * filter copy, a resize), with the filter copied every 5,000 keys; the next process
 * starts from the crash itself. 1: the same, then checked. 2: after the check's clean
 * stop, killed right after writing its first run, before any filter copy (as with a
 * large window, copied once per 1/8 of its keys); then checked.
 */
const snapshotMinKeys = (round: number) => (round % 3 === 2 ? 1e9 : 5_000);
const checked = (round: number) => round % 3 !== 0;

function killNow(round: number, before: number, out: string): boolean {
  if (round % 3 === 2) return /^written up to/m.test(out);
  const last = [...out.matchAll(/^batch (\d+) at (\d+)$/gm)].at(-1);
  return last !== undefined && Number(last[1]) >= before + 20 + ((round * 17) % 41);
}

/** How many keys of batch `b` are rows on disk (to tell "not written" from "not found"). */
function rowsOnDisk(dir: string, b: number): number {
  const db = new Database(join(dir, "dedup.db"), { readonly: true });
  try {
    let n = 0;
    for (const { name } of db
      .query<{ name: string }, []>("SELECT name FROM sqlite_schema WHERE name GLOB 'keys_[0-9]*'")
      .all()) {
      n += db
        .query<{ n: number }, [string]>(`SELECT count(*) AS n FROM ${name} WHERE message GLOB ?`)
        .get(`k${b}-*`)!.n;
    }
    return n;
  } finally {
    db.close();
  }
}

test("kill -9 of a process writing keys: every key the log holds is seen after restart, no other", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sluice-dedup-crash-"));
  try {
    let clock = Date.UTC(2025, 0, 1, 12);
    for (let round = 0; round < ROUNDS; round++) {
      const before = loggedBatches(dir).length;
      const args = [dir, String(clock), String(snapshotMinKeys(round))];
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
      // Run until the round's moment, then kill at a random point of what follows.
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline && proc.exitCode === null && !killNow(round, before, out)) {
        await Bun.sleep(2);
      }
      await Bun.sleep(Math.random() * 20);
      proc.kill(9);
      await proc.exited;
      await read;
      const last = [...out.matchAll(/^batch (\d+) at (\d+)$/gm)].at(-1);
      if (last) clock = Number(last[2]);
      const stderr = await new Response(proc.stderr).text();
      expect({ round, signal: proc.signalCode, stderr }).toEqual({
        round,
        signal: "SIGKILL",
        stderr: "",
      });
      expect(out).not.toContain("FALSE DUPLICATES");

      const logged = loggedBatches(dir);
      expect(logged.length).toBeGreaterThan(before);
      if (!checked(round)) continue;
      const store = await SqliteDedupStore.open(dir, {
        windowSeconds: WINDOW_SECONDS,
        now: () => clock,
      });
      try {
        const checkpoint = Number(store.checkpoint() ?? -1);
        const ids = (b: number) => batchKeys(b).map((k) => k.messageId);
        // Keys up to the checkpoint are on disk and in the filter: seen before any replay.
        for (const b of logged.filter((n) => n <= checkpoint)) {
          const seen = (await store.seen("web", ids(b))).size;
          if (seen !== BATCH) {
            expect({ round, b, checkpoint, seen, onDisk: rowsOnDisk(dir, b) }).toEqual({
              round,
              b,
              checkpoint,
              seen: BATCH,
              onDisk: BATCH,
            });
          }
        }
        // The log tail replayed (as start-up does): every logged key is a duplicate...
        const tail = logged.filter((b) => b > checkpoint);
        for (const b of tail) store.remember(batchKeys(b), String(b));
        for (const b of tail) {
          expect({ b, seen: (await store.seen("web", ids(b))).size }).toEqual({ b, seen: BATCH });
        }
        // ...and keys never logged are not.
        const next = Math.max(...logged) + 1;
        expect((await store.seen("web", [...ids(next), ...ids(next + 1)])).size).toBe(0);
      } finally {
        // A clean stop: the next process starts with the whole filter copied to disk.
        await store.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 240_000);
