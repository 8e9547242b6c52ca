import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteDedupStore } from "/work/wt/dedup/src/dedup/sqlite.ts";
import { batchKeys, loggedBatches } from "/work/wt/dedup/test/dedup/crash-batches.ts";

// The dedup store killed (-9) at any moment: while a run is written, while the filter is
// copied to disk (every 10 batches here), while a segment is resized. After each crash,
// the keys the store had written are there at once (restart with keys from before the
// crash), and with the log tail replayed every logged key is a duplicate, nothing else.

const CHILD = "/work/wt/dedup/test/dedup/crash-child.ts";
import { Database } from "bun:sqlite";
const ROUNDS = 6;

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
      // Run 20-60 batches, then kill at a random moment of the next one.
      const target = before + 20 + Math.floor(Math.random() * 40);
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline && proc.exitCode === null) {
        const last = [...out.matchAll(/^batch (\d+)$/gm)].at(-1);
        if (last && Number(last[1]) >= target) break;
        await Bun.sleep(5);
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
      const store = await SqliteDedupStore.open(dir, { windowSeconds: 86_400 });
      try {
        const checkpoint = store.checkpoint()?.offset ?? -1;
        const ids = (b: number) => batchKeys(b).map((k) => k.messageId);
        // Keys up to the checkpoint are on disk: seen before any replay.
        for (const b of logged.filter((n) => n <= checkpoint)) {
          const n = (await store.seen("web", ids(b))).size;
          if (n !== 500) {
            const db = new Database(join(dir, "dedup.db"), { readonly: true });
            let rows = 0;
            for (const t of db.query<{name:string},[]>("SELECT name FROM sqlite_schema WHERE name GLOB 'keys_*'").all())
              for (const id of ids(b)) rows += db.query<{n:number},[string]>(`SELECT count(*) AS n FROM ${t.name} WHERE message = ?`).get(id)!.n;
            console.log("DIAG batch", b, "seen", n, "rows on disk", rows, "runs", JSON.stringify(db.query("SELECT * FROM runs").all()), "covered", JSON.stringify(db.query("SELECT seg, covered FROM filter").all()));
            db.close();
          }
          expect({ b, seen: (await store.seen("web", ids(b))).size }).toEqual({ b, seen: 500 });
        }
        // The log tail replayed (as start-up does): every logged key is a duplicate...
        for (const b of logged)
          if (b > checkpoint) store.remember(batchKeys(b), { segment: 1, offset: b });
        for (const b of logged) {
          expect({ b, seen: (await store.seen("web", ids(b))).size }).toEqual({ b, seen: 500 });
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
