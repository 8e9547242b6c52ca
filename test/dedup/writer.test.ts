import { expect, test } from "bun:test";
import { existsSync, readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { FilterSegment, MIN_BUCKETS, SEGMENTS } from "../../src/dedup/filter.ts";
import { filterDir, newGeneration } from "../../src/dedup/filter-file.ts";
import { geometryFor } from "../../src/dedup/geometry.ts";
import { OpenRun } from "../../src/dedup/open-run.ts";
import type { FromWriter, ToWriter, WriterInit } from "../../src/dedup/protocol.ts";
import { createTables, openDedupDb } from "../../src/dedup/schema.ts";
import { tempDirs } from "../support/process.ts";

// The dedup store's writer thread (src/dedup/dedup-writer.ts), spoken to as the store
// speaks to it: what it has done by the time it answers.

const tempDir = tempDirs();

/** Files under `dir` this process holds open (Linux: /proc/self/fd). */
function openFilesUnder(dir: string): string[] {
  const open: string[] = [];
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(`${dir}/`)) open.push(target.slice(dir.length + 1));
    } catch {
      // closed between the listing and the read (the listing's own fd)
    }
  }
  return open.sort();
}

/** A writer thread on a fresh dedup.db in `dir`, and a way to wait for its answers. */
async function startWriter(dir: string) {
  const path = join(dir, "dedup.db");
  const db = openDedupDb(path, "reader");
  createTables(db);
  db.close();
  const worker = new Worker(new URL("../../src/dedup/dedup-writer.ts", import.meta.url).href);
  const answers: FromWriter[] = [];
  worker.onmessage = (e: MessageEvent<FromWriter>) => answers.push(e.data);
  const answer = async (t: FromWriter["t"]) => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const found = answers.find((a) => a.t === t || a.t === "failed");
      if (found) {
        answers.splice(answers.indexOf(found), 1);
        if (found.t === "failed") throw new Error(`writer failed: ${found.message}`);
        return found;
      }
      if (Date.now() > deadline) throw new Error(`no "${t}" from the writer`);
      await Bun.sleep(5);
    }
  };
  const init: WriterInit = {
    path,
    filterDir: filterDir(dir),
    generation: newGeneration(),
    geometry: geometryFor(3_600_000),
    segments: Array.from({ length: SEGMENTS }, () => FilterSegment.allocate(MIN_BUCKETS).buffer),
    covered: Array(SEGMENTS).fill(-1),
    fromTable: false,
    keysSinceSnapshot: 0,
    liveKeys: 0,
    snapshotMinKeys: 1e9,
  };
  const stashFloor = new Float64Array(new SharedArrayBuffer(SEGMENTS * 8)).fill(Infinity);
  worker.postMessage({ t: "init", init, stashFloor: stashFloor.buffer });
  await answer("ready");
  return { worker, answer, post: (m: ToWriter) => worker.postMessage(m) };
}

test.skipIf(!existsSync("/proc/self/fd"))(
  "once the writer says closed, it holds no file of the data dir open (its SQLite connection is really closed)",
  async () => {
    const dir = tempDir("dedup-writer");
    const w = await startWriter(dir);
    try {
      // A run written: the writer prepares its insert statements for the slice.
      const run = new OpenRun(1_000_000);
      for (let i = 0; i < 100; i++) run.add("web", `k-${i}`, i * 2 ** 40 + 1, Date.now());
      w.post({ t: "keys", slot: run.slot, ...run.takeUnsent() });
      w.post({ t: "seal", slot: run.slot, upTo: "1:1" });
      expect(await w.answer("committed")).toMatchObject({ slot: run.slot, keys: 100 });
      expect(openFilesUnder(dir)).toContain("dedup.db");

      w.post({ t: "close", stashes: [] });
      await w.answer("closed");
      // Not yet terminated: a statement left unfinalized made SQLite's close a deferred
      // one, and the connection (dedup.db, its -wal and -shm) lived on until the thread
      // was torn down, then checkpointed and deleted the -wal under whoever had already
      // gone on (a test removing the dir stopped half way: leftover temp dirs).
      expect(openFilesUnder(dir)).toEqual([]);
      expect(readdirSync(dir).sort()).toEqual(["dedup-filter", "dedup.db"]);
    } finally {
      w.worker.terminate();
    }
  },
);
