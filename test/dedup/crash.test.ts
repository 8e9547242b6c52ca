import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteDedupStore } from "../../src/dedup/sqlite.ts";
import { BATCH, batchKeys, GEOMETRY, loggedBatches, WINDOW_SECONDS } from "./crash-batches.ts";

// The dedup store killed (-9) at any moment: while a run is written, while the filter is
// copied to disk (every 10 batches here), while a segment is resized. After each crash,
// the keys the store had written are there at once (restart with keys from before the
// crash), and with the log tail replayed every logged key is a duplicate, nothing else.
//
// Rounds are short (a slot is 5 s here), so a process often starts inside the slot of the
// last run before it: a run it appended there once hid keys at or before the checkpoint
// from the filter copies that claimed that slot.

const CHILD = join(import.meta.dir, "crash-child.ts");
const ROUNDS = 14;

/**
 * Batches a round runs before its kill. Even rounds follow a clean stop (the check) and
 * die early, before their first filter copy (every 10 batches); odd rounds run longer and
 * die anywhere: in a run's write, a filter copy, a resize.
 */
function batchesBeforeKill(round: number): number {
  return round % 2 === 0 ? 1 + Math.floor(Math.random() * 8) : 20 + Math.floor(Math.random() * 40);
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
    for (let round = 0; round < ROUNDS; round++) {
      const before = loggedBatches(dir).length;
      const proc = Bun.spawn([process.execPath, CHILD, dir], { stdout: "pipe", stderr: "pipe" });
      let out = "";
      const read = (async () => {
        for await (const chunk of proc.stdout as unknown as AsyncIterable<Uint8Array>) {
          out += new TextDecoder().decode(chunk);
        }
      })();
      // Run some batches, then kill at a random moment of the next one.
      const target = before + batchesBeforeKill(round);
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline && proc.exitCode === null) {
        const last = [...out.matchAll(/^batch (\d+)$/gm)].at(-1);
        if (last && Number(last[1]) >= target) break;
        await Bun.sleep(2);
      }
      await Bun.sleep(Math.random() * 20);
      proc.kill(9);
      await proc.exited;
      await read;
      const stderr = await new Response(proc.stderr).text();
      expect({ round, signal: proc.signalCode, stderr }).toEqual({
        round,
        signal: "SIGKILL",
        stderr: "",
      });
      expect(out).not.toContain("FALSE DUPLICATES");

      const logged = loggedBatches(dir);
      expect(logged.length).toBeGreaterThan(before);
      // Even rounds: the next process starts from the crash itself (and replays the tail).
      if (round % 2 === 0) continue;
      const store = await SqliteDedupStore.open(dir, {
        windowSeconds: WINDOW_SECONDS,
        geometry: GEOMETRY,
      });
      try {
        const checkpoint = store.checkpoint()?.offset ?? -1;
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
        for (const b of logged)
          if (b > checkpoint) store.remember(batchKeys(b), { segment: 1, offset: b });
        for (const b of logged) {
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
