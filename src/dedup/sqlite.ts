import type { Database, Statement } from "bun:sqlite";
import { join } from "node:path";
import { checkpointCursor } from "../log/checkpoint.ts";
import type { LogCursor } from "../log/stream.ts";
import {
  bucketsFor,
  FilterSegment,
  MAX_LOAD,
  MIN_BUCKETS,
  Placement,
  SEGMENTS,
  TARGET_LOAD,
} from "./filter.ts";
import { filterDir, newGeneration } from "./filter-file.ts";
import { GcPacer } from "./gc.ts";
import { covers, type Geometry, geometryFor, SlotClock, type SlotRange, TAGS } from "./geometry.ts";
import { type KeyHash, keyedHash, newSecret } from "./hash.ts";
import type { DedupKey, DedupStats, DedupStore } from "./interface.ts";
import { loadFilter, lowestSlot } from "./load.ts";
import { OpenRun } from "./open-run.ts";
import type { FromWriter, ToWriter } from "./protocol.ts";
import {
  createTables,
  dropSliceTables,
  getMeta,
  hashesTables,
  keysTable,
  keysTables,
  openDedupDb,
  SCHEMA_VERSION,
  setMeta,
  storedText,
} from "./schema.ts";

export interface SqliteDedupOptions {
  windowSeconds: number;
  now?: () => number;
  /** Called when writing keys fails (they stay in memory and are retried). */
  onError?: (err: Error) => void;
  /** The key hash (tests inject a weak one to force collisions). Default: keyed wyhash. */
  hash?: KeyHash;
  /** Slot and slice lengths; default from the window (geometry.ts). */
  geometry?: Geometry;
  /**
   * The filter is copied to disk once the keys written since the last copy reach 1/16 of
   * the window's keys, but at most once per this many keys (default 50,000).
   */
  snapshotMinKeys?: number;
}

/**
 * Keys not yet confirmed on disk beyond which `seen` waits for the writer: ingestion then
 * slows to what the disk takes instead of memory growing without bound.
 */
const MAX_UNWRITTEN = 400_000;
/** The housekeeping timer: seals finished slots, hands keys on, expires, sweeps, resizes. */
const TICK_MS = 100;
/** Filter segments being resized at most at once (see resize). */
const MAX_RESIZING = 4;
/** A resized segment's load is drawn from TARGET_LOAD +- this share. */
const LOAD_JITTER = 0.15;
/** A full sweep of the filter (clearing expired entries) takes at most this share of the window. */
const SWEEP_SHARE = 1 / 4;

/** How the store was opened: see LoadedFilter. */
export interface OpenReport {
  reread: number;
  fromTable: number;
  rejected: string[];
  /** ms reading the filter copies, re-reading runs, rebuilding segments, and the whole open. */
  ms: { copies: number; reread: number; rebuild: number; total: number };
}

type LookupParams = [number, number, string, string];

/** One filter segment: the table lookups use, and the resized one being filled, if any. */
interface Segment {
  table: FilterSegment;
  next?: FilterSegment;
}

/**
 * The dedup store (SPEC 5) at a constant cost per key, whatever the window holds:
 *
 * - Each key is a 53-bit keyed hash plus its full key. Keys seen in the same short slot
 *   (2.75 s of a 24 h window) form a run, written once by the writer thread, sorted,
 *   at the end of its slice's table: one sequential row per key, no page rewritten
 *   for another key later, whatever the table's size.
 * - A filter in memory (filter.ts, ~5 bytes a key) answers "new" for almost every new
 *   key without touching disk, and for a match names the one run that can confirm it
 *   (a single index seek comparing the full key, so a hash collision is never taken for
 *   a duplicate). The filter may say "maybe", never "duplicate", on its own.
 * - Expiry drops a whole slice table (1/24 of the window) and lets the filter's entries
 *   of expired slots be reused; no row is ever deleted one by one.
 * - The event log is the source of truth: the store lags it by a few seconds, and its
 *   checkpoint (the log position its written keys cover) tells start-up where to replay.
 *
 * Lookups and recording run on the caller's thread against memory and a read-only
 * connection; every write is the writer thread's (dedup-writer.ts).
 */
export class SqliteDedupStore implements DedupStore {
  /** What the last open found and where its time went (benches, logs). */
  readonly opened: OpenReport;
  private readonly segments: Segment[];
  /** Per segment, the lowest slot with a key in a stash (shared with the writer; see snapshot). */
  private readonly stashFloor: Float64Array;
  private readonly placement = new Placement();
  private readonly candidates: number[] = [];
  /** Runs whose keys are not confirmed on disk yet, by slot. */
  private readonly open = new Map<number, OpenRun>();
  private current: OpenRun | undefined;
  /** The slot new keys go to; never goes back, even if the clock does. */
  private slot: number;
  private range: SlotRange;
  /** Live runs on disk: slot -> keys. */
  private readonly written = new Map<number, number>();
  private writtenKeys = 0;
  private readonly slices = new Set<number>();
  private readonly lookups = new Map<number, Statement<{ at: number }, LookupParams>>();
  private unwritten = 0;
  private lastCheckpoint: LogCursor | undefined;
  private writerError: Error | undefined;
  private writerDead = false;
  private waiters: (() => void)[] = [];
  private closed: Promise<void> | undefined;
  /** Settles once the writer thread has ended (terminated, or failed and gone). */
  private readonly exited: Promise<void>;
  private readonly timer: ReturnType<typeof setInterval>;
  private sweepSegment = 0;
  private sweepFrom = 0;
  private readonly gc = new GcPacer();
  private readonly now: () => number;

  private constructor(
    private readonly db: Database,
    private readonly writer: Worker,
    private readonly clock: SlotClock,
    private readonly hash: KeyHash,
    private readonly opts: SqliteDedupOptions,
    state: {
      segments: FilterSegment[];
      stashFloor: Float64Array;
      range: SlotRange;
      opened: OpenReport;
    },
  ) {
    this.opened = state.opened;
    this.now = opts.now ?? Date.now;
    this.segments = state.segments.map((table) => ({ table }));
    this.stashFloor = state.stashFloor;
    this.range = state.range;
    this.slot = state.range.current;
    const raw = getMeta(db, "checkpoint");
    this.lastCheckpoint = raw ? checkpointCursor(JSON.parse(raw)) : undefined;
    for (const r of db
      .query<{ slot: number; keys: number }, [number]>(
        "SELECT slot, keys FROM runs WHERE slot >= ?",
      )
      .all(this.range.first)) {
      this.written.set(r.slot, r.keys);
      this.writtenKeys += r.keys;
    }
    for (const slice of keysTables(db)) this.slices.add(slice);
    writer.onmessage = (e: MessageEvent<FromWriter>) => this.onWriter(e.data);
    this.exited = new Promise((resolve) => writer.addEventListener("close", () => resolve()));
    writer.addEventListener("error", (e) => {
      this.writerDead = true;
      this.fail(new Error(`dedup writer thread failed: ${(e as ErrorEvent).message}`));
    });
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref?.();
  }

  /**
   * Opens (or creates) `<dataDir>/dedup.db`, loads the filter, and starts the writer
   * thread. Keys written with another hash, or with a slot geometry the window no longer
   * fits in, are discarded: start-up then rebuilds them from the event log.
   */
  static async open(dataDir: string, opts: SqliteDedupOptions): Promise<SqliteDedupStore> {
    const opening = performance.now();
    const path = join(dataDir, "dedup.db");
    const db = openDedupDb(path, "reader");
    try {
      createTables(db);
      const windowMs = opts.windowSeconds * 1000;
      const secret = BigInt(getMeta(db, "secret") ?? newSecret().toString());
      const hash = opts.hash ?? keyedHash(secret);
      const stored = getMeta(db, "geometry");
      let geometry = opts.geometry ?? geometryFor(windowMs);
      const keep =
        getMeta(db, "version") === SCHEMA_VERSION &&
        getMeta(db, "hash") === hash.id &&
        stored !== undefined &&
        covers(JSON.parse(stored) as Geometry, windowMs) &&
        (opts.geometry === undefined || stored === JSON.stringify(opts.geometry));
      if (keep) geometry = JSON.parse(stored) as Geometry;
      // The filter files of another generation (keys discarded since) are not loaded.
      let generation = 0;
      // Immediate: the write lock is taken first, waiting out busy_timeout, rather than a
      // read snapshot upgraded later, which fails at once (SQLITE_BUSY_SNAPSHOT) when any
      // other connection wrote in between.
      db.transaction(() => {
        if (!keep) discardKeys(db);
        generation = Number(getMeta(db, "filterGeneration"));
        if (!keep || !Number.isSafeInteger(generation)) {
          generation = newGeneration();
          setMeta(db, "filterGeneration", String(generation));
        }
        setMeta(db, "version", SCHEMA_VERSION);
        setMeta(db, "hash", hash.id);
        setMeta(db, "secret", secret.toString());
        setMeta(db, "geometry", JSON.stringify(geometry));
      }).immediate();

      const clock = new SlotClock(geometry, windowMs);
      const now = (opts.now ?? Date.now)();
      const last = db
        .query<{ slot: number | null }, []>("SELECT max(slot) AS slot FROM runs")
        .get();
      // New keys go to a slot after every run on disk, and after every slot a filter copy
      // covers, even when the previous process stopped (or crashed) within the current
      // slot: a run is written once, so a stored filter copy that covers a slot holds all
      // its keys. Appending to a run it claimed would leave the new keys out of the
      // filter after a crash (seen as new: stored twice).
      const files = { dir: filterDir(dataDir), generation };
      const loaded = loadFilter(db, files, (lastCovered) =>
        clock.range(now, Math.max(clock.slotAt(now), (last?.slot ?? -1) + 1, lastCovered + 1)),
      );
      const range = loaded.range;
      const stashFloor = new Float64Array(new SharedArrayBuffer(SEGMENTS * 8));
      for (let s = 0; s < SEGMENTS; s++) {
        stashFloor[s] = lowestSlot(loaded.segments[s]!.stash, range);
      }
      const live = db
        .query<{ n: number | null }, [number]>("SELECT sum(keys) AS n FROM runs WHERE slot >= ?")
        .get(range.first);
      const writer = new Worker(new URL("./dedup-writer.ts", import.meta.url).href);
      const started = new Promise<void>((resolve, reject) => {
        writer.onmessage = (e: MessageEvent<FromWriter>) => {
          if (e.data.t === "ready") resolve();
          else if (e.data.t === "failed") reject(new Error(e.data.message));
        };
        writer.addEventListener("error", (e) => reject(new Error((e as ErrorEvent).message)));
        writer.postMessage({
          t: "init",
          stashFloor: stashFloor.buffer,
          init: {
            path,
            filterDir: files.dir,
            generation,
            geometry,
            segments: loaded.segments.map((s) => s.buffer),
            covered: loaded.covered,
            fromTable: loaded.fromTable > 0,
            keysSinceSnapshot: loaded.reread,
            liveKeys: live?.n ?? 0,
            snapshotMinKeys: opts.snapshotMinKeys ?? 50_000,
          },
        });
      });
      try {
        await started;
      } catch (err) {
        writer.terminate();
        throw err;
      }
      writer.unref();
      const { reread, fromTable, rejected, ms } = loaded;
      return new SqliteDedupStore(db, writer, clock, hash, opts, {
        segments: loaded.segments,
        stashFloor,
        range,
        opened: { reread, fromTable, rejected, ms: { ...ms, total: performance.now() - opening } },
      });
    } catch (err) {
      db.close();
      throw err;
    }
  }

  async seen(sourceId: string, messageIds: string[]): Promise<Set<string>> {
    if (this.unwritten > MAX_UNWRITTEN) await this.backlog();
    if (this.closed) throw new Error("dedup store is closed");
    const now = this.now();
    this.advance(now);
    // Inside the window means seen less than windowMs ago: `at > since`.
    const since = now - this.clock.windowMs;
    const found = new Set<string>();
    const p = this.placement;
    const candidates = this.candidates;
    for (const id of messageIds) {
      const h = this.hash.of(sourceId, id);
      candidates.length = 0;
      this.segments[p.of(h).seg]!.table.find(p, h, this.range, candidates);
      for (const slot of candidates) {
        const at = this.open.get(slot)?.at(sourceId, id, h);
        if ((at !== undefined && at > since) || this.onDisk(slot, h, sourceId, id, since)) {
          found.add(id);
          break;
        }
      }
    }
    return found;
  }

  remember(keys: DedupKey[], upTo: LogCursor, at?: number): void {
    if (this.closed) throw new Error("dedup store is closed");
    const now = this.now();
    const run = this.runFor(now);
    const since = now - this.clock.windowMs;
    const tag = run.slot & (TAGS - 1);
    const p = this.placement;
    for (const k of keys) {
      const seenAt = Math.min(k.at ?? at ?? now, now);
      if (seenAt <= since) continue; // replayed from the log, already out of the window
      const h = this.hash.of(k.sourceId, k.messageId);
      if (!run.add(k.sourceId, k.messageId, h, seenAt)) continue;
      this.unwritten++;
      const seg = this.segments[p.of(h).seg]!;
      this.insert(seg.table, p, h, tag, run.slot);
      if (seg.next) this.insert(seg.next, p, h, tag, run.slot);
    }
    run.upTo = upTo;
  }

  checkpoint(): LogCursor | undefined {
    return this.lastCheckpoint;
  }

  stats(): DedupStats {
    const filter = this.filterBytes();
    return {
      keys: this.writtenKeys + this.unwritten,
      memoryBytes: filter + this.unwritten * OpenRun.BYTES_PER_KEY,
    };
  }

  private filterBytes(): number {
    let bytes = 0;
    for (const s of this.segments)
      bytes += s.table.buffer.byteLength + (s.next?.buffer.byteLength ?? 0);
    return bytes;
  }

  healthy(): boolean {
    return !this.writerDead && this.writerError === undefined;
  }

  backlog(): Promise<void> {
    if (this.unwritten <= MAX_UNWRITTEN / 2) return Promise.resolve();
    return this.waitFor(() => this.unwritten <= MAX_UNWRITTEN / 2);
  }

  /** Hands every key to the writer and resolves once all are on disk (tests, tools). */
  flush(): Promise<void> {
    if (this.current) this.seal(this.current);
    return this.waitFor(() => this.open.size === 0);
  }

  close(): Promise<void> {
    this.closed ??= (async () => {
      clearInterval(this.timer);
      if (this.current) this.seal(this.current);
      if (!this.writerDead) {
        const closed = new Promise<void>((resolve) => {
          this.closedWriter = resolve;
        });
        // The writer is unref'd so that it never keeps a process alive by itself; while
        // its last writes are awaited it must, or the process could end before them.
        this.writer.ref();
        // Stashes of resized segments are empty or part of the new tables' stashes.
        this.post({
          t: "close",
          stashes: this.segments.map((seg) => [...seg.table.stash, ...(seg.next?.stash ?? [])]),
        });
        // A thread that fails and ends instead of answering does not hold close up.
        await Promise.race([closed, this.exited]);
      }
      // Resolved only once the thread is gone: nothing of the store touches the data
      // dir after close (a caller may remove it, or open the store again).
      this.writer.ref();
      this.writer.terminate();
      await this.exited;
      for (const stmt of this.lookups.values()) stmt.finalize();
      this.db.close();
    })();
    return this.closed;
  }

  private closedWriter: (() => void) | undefined;

  /** The open run for keys recorded at `now`, sealing the previous slot's run if it ended. */
  private runFor(now: number): OpenRun {
    this.advance(now);
    const run = this.current;
    if (run && run.slot === this.slot) return run;
    if (run) this.seal(run);
    const next = new OpenRun(this.slot);
    this.current = next;
    this.open.set(next.slot, next);
    return next;
  }

  private advance(now: number): void {
    this.slot = Math.max(this.slot, this.clock.slotAt(now));
    this.range = this.clock.range(now, this.slot);
  }

  private insert(table: FilterSegment, p: Placement, h: number, tag: number, slot: number): void {
    const stashed = table.stash.length;
    table.insert(p, h, tag, this.range);
    if (table.stash.length > stashed) {
      this.stashFloor[p.seg] = Math.min(this.stashFloor[p.seg]!, slot);
    }
  }

  /**
   * Whether run `slot` on disk holds exactly this key, seen less than a window ago: one
   * seek on the full primary key, so keys sharing a hash cost no more than any other.
   */
  private onDisk(slot: number, h: number, sourceId: string, id: string, since: number): boolean {
    if (!this.written.has(slot)) return false;
    const lookup = this.lookupFor(this.clock.sliceOf(slot));
    const at = lookup?.get(slot, h, sourceId, storedText(id))?.at;
    return at !== undefined && at > since;
  }

  private lookupFor(slice: number): Statement<{ at: number }, LookupParams> | undefined {
    let stmt = this.lookups.get(slice);
    if (!stmt && this.slices.has(slice)) {
      stmt = this.db.prepare<{ at: number }, LookupParams>(
        `SELECT at FROM ${keysTable(slice)} WHERE slot = ? AND h = ? AND source = ? AND message = ?`,
      );
      this.lookups.set(slice, stmt);
    }
    return stmt;
  }

  /** Hands a run's last keys to the writer; the next keys go to a later slot. */
  private seal(run: OpenRun): void {
    if (run.sealed) return;
    run.sealed = true;
    if (this.current === run) this.current = undefined;
    // A run sealed before its slot ended (flush, close) is not reopened: later keys go on.
    this.slot = Math.max(this.slot, run.slot + 1);
    this.sendKeys(run);
    this.post({ t: "seal", slot: run.slot, upTo: run.upTo });
  }

  private sendKeys(run: OpenRun): void {
    if (run.sent === run.size) return;
    const part = run.takeUnsent();
    this.post({ t: "keys", slot: run.slot, ...part }, [
      part.hashes.buffer,
      part.ats.buffer,
      part.sources.buffer,
      part.lengths.buffer,
    ]);
  }

  private post(m: ToWriter, transfer: ArrayBuffer[] = []): void {
    if (this.writerDead) return;
    this.writer.postMessage(m, transfer);
  }

  private onWriter(m: FromWriter): void {
    switch (m.t) {
      case "committed": {
        const run = this.open.get(m.slot);
        if (run?.sealed) {
          this.open.delete(m.slot);
          this.unwritten -= run.size;
        }
        if (m.keys > 0) {
          this.written.set(m.slot, (this.written.get(m.slot) ?? 0) + m.keys);
          this.writtenKeys += m.keys;
          this.slices.add(m.slice);
        }
        if (m.upTo) this.lastCheckpoint = m.upTo;
        break;
      }
      case "rebuilt": {
        const seg = this.segments[m.seg]!;
        const next = seg.next;
        if (!next) break;
        next.used += m.used;
        next.stash.push(...m.stash);
        seg.table = next;
        seg.next = undefined;
        this.stashFloor[m.seg] = lowestSlot(next.stash, this.range);
        break;
      }
      case "failed":
        this.fail(new Error(m.message));
        break;
      case "recovered":
        this.writerError = undefined;
        break;
      case "closed":
        this.closedWriter?.();
        break;
    }
    this.wake();
  }

  private fail(err: Error): void {
    this.writerError = err;
    this.opts.onError?.(err);
    this.wake();
  }

  private waitFor(done: () => boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (done()) resolve();
        else if (this.writerDead || (this.writerError && this.unwritten > MAX_UNWRITTEN)) {
          reject(this.writerError ?? new Error("dedup writer stopped"));
        } else {
          this.waiters.push(check);
          this.writer.ref();
          return;
        }
      };
      check();
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
    // Someone waits for the writer: it keeps the process alive until they are answered.
    if (this.waiters.length > 0) this.writer.ref();
    else if (!this.closed) this.writer.unref();
  }

  /** Housekeeping, every TICK_MS: nothing here is proportional to the window. */
  private tick(): void {
    try {
      const now = this.now();
      this.advance(now);
      const run = this.current;
      if (run && run.slot < this.clock.slotAt(now)) this.seal(run);
      else if (run) this.sendKeys(run);
      this.expire(now);
      this.sweep();
      this.resize();
      this.gc.check(this.filterBytes(), true);
    } catch (err) {
      this.fail(err as Error);
    }
  }

  /** Drops slices whose every key is older than the window: one DROP TABLE each. */
  private expire(now: number): void {
    for (const slice of [...this.slices].sort((a, b) => a - b)) {
      if (!this.clock.sliceExpired(slice, now)) break;
      this.lookups.get(slice)?.finalize();
      this.lookups.delete(slice);
      this.slices.delete(slice);
      for (const [slot, keys] of this.written) {
        if (this.clock.sliceOf(slot) === slice) {
          this.written.delete(slot);
          this.writtenKeys -= keys;
        }
      }
      this.post({ t: "drop", slice });
    }
    // Keys of slots that left the window no longer count, though their slice stays a while.
    for (const [slot, keys] of this.written) {
      if (slot >= this.range.first) break;
      this.written.delete(slot);
      this.writtenKeys -= keys;
    }
  }

  /**
   * Clears expired filter entries a few at a time, so that a full pass over the filter
   * takes a quarter of the window: an entry is cleared long before its tag (a slot
   * number modulo 65,536) could name a new slot.
   */
  private sweep(): void {
    let total = 0;
    for (const s of this.segments) total += s.table.capacity;
    let budget = Math.max(1024, Math.ceil((total * TICK_MS) / (this.clock.windowMs * SWEEP_SHARE)));
    while (budget > 0) {
      const seg = this.segments[this.sweepSegment]!;
      if (seg.next) {
        this.nextSweepSegment();
        budget -= 64;
        continue;
      }
      const count = Math.min(budget, seg.table.capacity - this.sweepFrom);
      this.sweepFrom = seg.table.sweep(this.sweepFrom, count, this.range);
      budget -= count;
      if (this.sweepFrom === 0) {
        this.stashFloor[this.sweepSegment] = lowestSlot(seg.table.stash, this.range);
        this.nextSweepSegment();
      }
    }
  }

  private nextSweepSegment(): void {
    this.sweepSegment = (this.sweepSegment + 1) % SEGMENTS;
    this.sweepFrom = 0;
  }

  /**
   * Resizes a segment that is too full (or has keys in its stash) or mostly empty: a new
   * table is filled by the writer from disk while this thread adds what it records to
   * both, then takes its place. At most MAX_RESIZING segments at a time (the fullest
   * first), so the extra memory is a few segments', never the whole filter's; and each
   * new table's load is drawn around TARGET_LOAD, so that segments filled at the same pace
   * come due at different times instead of all together (every rebuild reads its keys
   * back from disk: 64 at once stalled ingestion for seconds, and held half the filter
   * again in memory).
   */
  private resize(): void {
    let resizing = 0;
    for (const seg of this.segments) if (seg.next) resizing++;
    if (resizing >= MAX_RESIZING) return;
    const due: { s: number; load: number }[] = [];
    for (let s = 0; s < SEGMENTS; s++) {
      const seg = this.segments[s]!;
      if (seg.next) continue;
      const t = seg.table;
      const full = t.used > t.capacity * MAX_LOAD || t.stash.length > 0;
      const empty = t.buckets > MIN_BUCKETS && t.used < t.capacity * TARGET_LOAD * 0.25;
      if (full || empty) due.push({ s, load: t.used / t.capacity + t.stash.length });
    }
    if (due.length === 0) return;
    due.sort((a, b) => b.load - a.load);
    const started = new Map<number, FilterSegment>();
    for (const { s } of due) {
      if (resizing + started.size >= MAX_RESIZING) break;
      const t = this.segments[s]!.table;
      const full = t.used > t.capacity * MAX_LOAD || t.stash.length > 0;
      const load = TARGET_LOAD * (1 - LOAD_JITTER + 2 * LOAD_JITTER * Math.random());
      const buckets = bucketsFor(t.countLive(this.range), load);
      if (!full && buckets >= t.buckets) continue;
      started.set(s, FilterSegment.allocate(Math.max(buckets, full ? t.buckets : MIN_BUCKETS)));
    }
    if (started.size === 0) return;
    // Every key recorded so far goes to the writer first: it fills the new tables from
    // the runs on disk and the keys it holds; keys recorded from now on go to both tables.
    if (this.current) this.sendKeys(this.current);
    for (const [s, next] of started) {
      this.segments[s]!.next = next;
      this.post({ t: "rebuild", seg: s, buffer: next.buffer, range: { ...this.range } });
    }
  }
}

/** Forgets every key and the checkpoint: start-up then replays the whole log. */
function discardKeys(db: Database): void {
  for (const slice of new Set([...keysTables(db), ...hashesTables(db)])) {
    dropSliceTables(db, slice);
  }
  db.exec("DELETE FROM runs; DELETE FROM filter; DELETE FROM meta WHERE key = 'checkpoint'");
}
