/**
 * Worker entry of the dedup store's writer thread: every write to dedup.db happens here,
 * so that sorting a run, inserting it, WAL checkpoints (with their fsync), copying the
 * filter to disk, dropping expired slices and refilling resized filter segments never
 * hold the event loop that answers requests. Messages are handled strictly in order.
 *
 * A separate entry point: `bun build --compile` must list it (see package.json).
 */
import type { Database, Statement } from "bun:sqlite";
import type { LogCursor } from "../log/stream.ts";
import { batchThisThread } from "../thread-priority.ts";
import { FilterSegment, Placement, SEGMENTS } from "./filter.ts";
import { writeFilterCopy } from "./filter-file.ts";
import { GcPacer } from "./gc.ts";
import { TAGS } from "./geometry.ts";
import { fillFromRuns, lowestSlot } from "./load.ts";
import type { FromWriter, ToWriter, WriterInit } from "./protocol.ts";
import {
  createKeysTable,
  dropSliceTables,
  hashesTable,
  keysTable,
  openDedupDb,
  setMeta,
  storedText,
} from "./schema.ts";

declare const self: Worker;

/**
 * A new copy of the filter is written once the keys added since the last one reach this
 * share of the keys in the window: the copies then cost a constant number of bytes per
 * key, and a restart after a crash re-reads at most this share of the window from disk.
 * A sixteenth: written as plain files the copies cost the disk what an eighth did
 * through SQLite (its WAL, then the table), and the re-read after kill -9 is halved.
 */
const SNAPSHOT_SHARE = 1 / 16;
/** After a failed write, the writer tries again this often. */
const RETRY_MS = 1000;

/** Rows per INSERT statement when writing a run. */
const ROWS_PER_INSERT = 32;

interface Inserts {
  many: Statement;
  one: Statement;
  hashes: Statement;
}

interface PendingRun {
  parts: Extract<ToWriter, { t: "keys" }>[];
}

const post = (m: FromWriter) => self.postMessage(m);

class Writer {
  private readonly db: Database;
  private readonly segments: FilterSegment[];
  private readonly pending = new Map<number, PendingRun>();
  private readonly sealed: { slot: number; upTo: LogCursor | null }[] = [];
  private readonly inserts = new Map<number, Inserts>();
  private readonly params: (string | number)[] = new Array(ROWS_PER_INSERT * 5);
  private lastCommitted = -1;
  private keysSinceSnapshot: number;
  private liveKeys: number;
  /** Segments whose copy is due, written one per turn of the event loop. */
  private snapshotQueue: number[] = [];
  private snapshotTimer: ReturnType<typeof setTimeout> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private failing = false;
  private readonly gc = new GcPacer();
  /** Where `snapshot` copies a segment before writing it (reused: no fresh pages each time). */
  private scratch = new Uint8Array(0);
  /** Per segment, the lowest slot of a key kept outside the table (its stash), else +Inf. */
  private readonly stashFloor: Float64Array;

  constructor(private readonly init: WriterInit & { stashFloor: SharedArrayBuffer }) {
    this.db = openDedupDb(init.path, "writer");
    this.segments = init.segments.map((b) => new FilterSegment(b));
    this.stashFloor = new Float64Array(init.stashFloor);
    this.keysSinceSnapshot = init.keysSinceSnapshot;
    this.liveKeys = init.liveKeys;
    const last = this.db
      .query<{ slot: number | null }, []>("SELECT max(slot) AS slot FROM runs")
      .get();
    this.lastCommitted = last?.slot ?? -1;
    if (this.keysSinceSnapshot > 0 || init.fromTable || init.covered.some((c) => c < 0)) {
      this.queueSnapshots();
    }
  }

  handle(m: ToWriter): void {
    switch (m.t) {
      case "keys": {
        let run = this.pending.get(m.slot);
        if (!run) {
          run = { parts: [] };
          this.pending.set(m.slot, run);
        }
        run.parts.push(m);
        return;
      }
      case "seal":
        this.sealed.push({ slot: m.slot, upTo: m.upTo });
        this.commitSealed();
        return;
      case "drop":
        this.dropSlice(m.slice);
        return;
      case "rebuild":
        this.rebuild(m);
        return;
      case "close":
        this.close(m.stashes);
        return;
    }
  }

  /** Writes the sealed runs in slot order; a failure leaves them queued and retries later. */
  private commitSealed(): void {
    clearTimeout(this.retryTimer);
    while (this.sealed.length > 0) {
      const next = this.sealed[0]!;
      try {
        const keys = this.commit(next.slot, next.upTo);
        this.sealed.shift();
        this.succeeded();
        post({
          t: "committed",
          slot: next.slot,
          slice: this.sliceOf(next.slot),
          keys,
          upTo: next.upTo,
        });
      } catch (err) {
        this.fail((err as Error).message);
        this.retryTimer = setTimeout(() => this.commitSealed(), RETRY_MS);
        return;
      }
    }
    this.collectGarbage();
    const due = Math.max(this.init.snapshotMinKeys, this.liveKeys * SNAPSHOT_SHARE);
    if (this.keysSinceSnapshot >= due) {
      this.queueSnapshots();
    }
  }

  /**
   * One run: the slot's keys sorted by hash and appended to its slice's table in one
   * transaction with the new checkpoint, so the table grows at its end only.
   */
  private commit(slot: number, upTo: LogCursor | null): number {
    const parts = this.pending.get(slot)?.parts ?? [];
    let n = 0;
    for (const p of parts) n += p.hashes.length;
    const hashes = new Float64Array(n);
    const sources: string[] = [];
    const messages: string[] = [];
    const ats = new Float64Array(n);
    let at = 0;
    for (const p of parts) {
      hashes.set(p.hashes, at);
      ats.set(p.ats, at);
      let offset = 0;
      for (let i = 0; i < p.lengths.length; i++) {
        const end = offset + p.lengths[i]!;
        sources.push(p.sourceNames[p.sources[i]!]!);
        messages.push(storedText(p.text.slice(offset, end)));
        offset = end;
      }
      at += p.hashes.length;
    }
    const order = Array.from({ length: n }, (_, i) => i).sort(
      (a, b) =>
        hashes[a]! - hashes[b]! || cmp(sources[a]!, sources[b]!) || cmp(messages[a]!, messages[b]!),
    );
    const slice = this.sliceOf(slot);
    const insert = n > 0 ? this.insertFor(slice) : undefined;
    this.db.transaction(() => {
      if (insert) {
        // Many rows per statement: a third less work per key than one row per call.
        const params = this.params;
        let k = 0;
        for (; k + ROWS_PER_INSERT <= n; k += ROWS_PER_INSERT) {
          for (let j = 0; j < ROWS_PER_INSERT; j++) {
            const i = order[k + j]!;
            const o = j * 5;
            params[o] = slot;
            params[o + 1] = hashes[i]!;
            params[o + 2] = sources[i]!;
            params[o + 3] = messages[i]!;
            params[o + 4] = ats[i]!;
          }
          insert.many.run(...params);
        }
        for (; k < n; k++) {
          const i = order[k]!;
          insert.one.run(slot, hashes[i]!, sources[i]!, messages[i]!, ats[i]!);
        }
        // The run's hashes alone, in one blob: what a restart re-reads (load.ts).
        const sorted = new Float64Array(n);
        for (let j = 0; j < n; j++) sorted[j] = hashes[order[j]!]!;
        insert.hashes.run(slot, new Uint8Array(sorted.buffer));
        // Written once: a second run in a slot would be outside filter copies that
        // claim the slot (see `snapshot`), so it fails here instead of going unseen.
        this.db.query("INSERT INTO runs (slot, slice, keys) VALUES (?, ?, ?)").run(slot, slice, n);
      }
      if (upTo) setMeta(this.db, "checkpoint", JSON.stringify(upTo));
    })();
    this.pending.delete(slot);
    // Only a run with keys has a row in `runs`: a restart goes on after the last of
    // those, so an empty slot must not count as covered (its keys could come later).
    if (n > 0) this.lastCommitted = Math.max(this.lastCommitted, slot);
    this.keysSinceSnapshot += n;
    this.liveKeys += n;
    return n;
  }

  private insertFor(slice: number): Inserts {
    let stmts = this.inserts.get(slice);
    if (!stmts) {
      createKeysTable(this.db, slice);
      const sql = (rows: number) =>
        `INSERT OR IGNORE INTO ${keysTable(slice)} (slot, h, source, message, at) VALUES ` +
        Array(rows).fill("(?, ?, ?, ?, ?)").join(", ");
      stmts = {
        many: this.db.prepare(sql(ROWS_PER_INSERT)),
        one: this.db.prepare(sql(1)),
        hashes: this.db.prepare(`INSERT INTO ${hashesTable(slice)} (slot, h) VALUES (?, ?)`),
      };
      this.inserts.set(slice, stmts);
    }
    return stmts;
  }

  private sliceOf(slot: number): number {
    return Math.floor(slot / this.init.geometry.slotsPerSlice);
  }

  /** Expiry: the whole slice goes in one DROP TABLE, never row by row. */
  private dropSlice(slice: number): void {
    try {
      const stmts = this.inserts.get(slice);
      stmts?.many.finalize();
      stmts?.one.finalize();
      stmts?.hashes.finalize();
      this.inserts.delete(slice);
      this.db.transaction(() => {
        const gone = this.db
          .query<{ n: number | null }, [number]>("SELECT sum(keys) AS n FROM runs WHERE slice = ?")
          .get(slice);
        this.liveKeys = Math.max(0, this.liveKeys - (gone?.n ?? 0));
        this.db.query("DELETE FROM runs WHERE slice = ?").run(slice);
        dropSliceTables(this.db, slice);
      })();
      this.succeeded();
    } catch (err) {
      this.fail(`dropping slice ${slice}: ${(err as Error).message}`);
    }
  }

  /**
   * Fills a resized segment with the hashes of its keys: those in live runs on disk and
   * those sent but not written yet. The main thread sent every key it had before asking
   * and adds every key it records meanwhile, so none slips between the two.
   */
  private rebuild(m: Extract<ToWriter, { t: "rebuild" }>): void {
    const seg = new FilterSegment(m.buffer);
    // The main thread keeps adding keys of newer slots meanwhile: read their tags as ahead
    // of `current`, not as 65,536 slots behind it (expired, free to overwrite).
    const range = { current: m.range.current + TAGS / 4, first: m.range.first };
    try {
      fillFromRuns(this.db, m.seg, seg, range);
      // Keys the main thread sent before asking, not in a run on disk yet.
      const p = new Placement();
      for (const run of this.pending.values()) {
        for (const part of run.parts) {
          const tag = part.slot & (TAGS - 1);
          const hashes = part.hashes;
          for (let i = 0; i < hashes.length; i++) {
            const h = hashes[i]!;
            if (p.of(h).seg === m.seg) seg.insert(p, h, tag, range);
          }
        }
      }
    } catch (err) {
      this.fail(`resizing filter segment ${m.seg}: ${(err as Error).message}`);
    }
    this.segments[m.seg] = seg;
    // Keys of the new table's stash are not in its copies: keep their runs uncovered
    // (the main thread resets this when it takes the new table over).
    this.stashFloor[m.seg] = Math.min(this.stashFloor[m.seg]!, lowestSlot(seg.stash, range));
    this.snapshotQueue = [m.seg, ...this.snapshotQueue.filter((s) => s !== m.seg)];
    this.scheduleSnapshot();
    post({ t: "rebuilt", seg: m.seg, used: seg.used, stash: seg.stash });
  }

  /** This thread's heap counts the filter too: see gc.ts. */
  private collectGarbage(): void {
    let filter = 0;
    for (const s of this.segments) filter += s.buffer.byteLength;
    this.gc.check(filter, false);
  }

  private queueSnapshots(): void {
    this.keysSinceSnapshot = 0;
    const queued = new Set(this.snapshotQueue);
    for (let s = 0; s < SEGMENTS; s++) if (!queued.has(s)) this.snapshotQueue.push(s);
    this.scheduleSnapshot();
  }

  private scheduleSnapshot(): void {
    if (this.snapshotTimer || this.snapshotQueue.length === 0) return;
    this.snapshotTimer = setTimeout(() => {
      this.snapshotTimer = undefined;
      const seg = this.snapshotQueue.shift();
      if (seg !== undefined) this.snapshot(seg);
      this.collectGarbage();
      this.scheduleSnapshot();
    }, 0);
  }

  /**
   * Copies one segment to disk with the last slot it covers: every run written up to
   * then had its keys in the table before the copy began (entries never move), except
   * keys in the main thread's stash, which `stashFloor` keeps out of the covered range.
   * A run is written once and never gains keys later (a restarted store starts after the
   * last run on disk), so the copy covers its slot for good.
   *
   * The copy goes to its own file (filter-file.ts), not dedup.db: a restart reads it
   * straight into the segment's shared buffer. The table is first copied into a buffer
   * of this thread's (reused), since the main thread may insert meanwhile and the file's
   * checksum must match the bytes written.
   */
  private snapshot(seg: number, stash?: number[]): void {
    const segment = this.segments[seg]!;
    // With the stash written beside the table, nothing is left out of the copy.
    const covered = stash
      ? this.lastCommitted
      : Math.min(this.lastCommitted, this.stashFloor[seg]! - 1);
    const bytes = segment.buffer.byteLength;
    if (this.scratch.byteLength < bytes) this.scratch = new Uint8Array(bytes);
    const entries = this.scratch.subarray(0, bytes);
    entries.set(new Uint8Array(segment.buffer));
    const words = new Uint32Array(entries.buffer, 0, bytes / 4);
    let used = 0;
    for (let i = 0; i < words.length; i++) if (words[i] !== 0) used++;
    try {
      writeFilterCopy(
        this.init.filterDir,
        { seg, buckets: segment.buckets, covered, used, generation: this.init.generation },
        entries,
        stash ?? [],
      );
      // A copy of stores before the files: the file supersedes it.
      if (this.init.fromTable) this.db.query("DELETE FROM filter WHERE seg = ?").run(seg);
      this.succeeded();
    } catch (err) {
      this.fail(`copying filter segment ${seg}: ${(err as Error).message}`);
    }
  }

  /** Reports a failed write; the main thread logs it and reports not ready. */
  private fail(message: string): void {
    this.failing = true;
    post({ t: "failed", message });
  }

  /** After a failure, the first write that works says so (ready again). */
  private succeeded(): void {
    if (!this.failing) return;
    this.failing = false;
    post({ t: "recovered" });
  }

  private close(stashes: number[][]): void {
    this.commitSealed();
    // Nothing runs after "closed": the copies a commit just queued are written below,
    // and a failed commit is not retried (the next start replays the log tail).
    clearTimeout(this.snapshotTimer);
    clearTimeout(this.retryTimer);
    this.snapshotQueue = [];
    if (this.sealed.length === 0) {
      // A copy of every segment: the next start loads the filter and re-reads nothing.
      // The main thread's stashes, and this thread's own: a segment rebuilt here whose
      // "rebuilt" the main thread has not taken in yet has its fill's stash only here.
      for (let s = 0; s < SEGMENTS; s++) {
        this.snapshot(s, [...(stashes[s] ?? []), ...this.segments[s]!.stash]);
      }
    }
    try {
      this.db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    } catch (err) {
      // Still closed, and "closed" still said: the store's close waits for it.
      this.fail(`checkpointing dedup.db at close: ${(err as Error).message}`);
    }
    // Every prepared statement finalized first: with one left, SQLite's close is only
    // deferred, and the connection (dedup.db, its -wal and -shm open) lives on until
    // this thread is torn down, after "closed": it then checkpoints and deletes the
    // -wal under whoever went on (a data dir being removed stayed half removed).
    for (const stmts of this.inserts.values()) {
      stmts.many.finalize();
      stmts.one.finalize();
      stmts.hashes.finalize();
    }
    this.inserts.clear();
    this.db.close();
    post({ t: "closed" });
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

let writer: Writer | undefined;
self.onmessage = (
  e: MessageEvent<ToWriter | { t: "init"; init: WriterInit; stashFloor: SharedArrayBuffer }>,
) => {
  const m = e.data;
  try {
    if (m.t === "init") {
      batchThisThread(); // below the event loop's wake-ups, not its share (thread-priority.ts)
      writer = new Writer({ ...m.init, stashFloor: m.stashFloor });
      post({ t: "ready" });
    } else writer?.handle(m);
  } catch (err) {
    post({ t: "failed", message: (err as Error).message });
  }
};
