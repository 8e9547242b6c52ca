import type { Database } from "bun:sqlite";
import type { LogPosition } from "../log/interface.ts";
import { getMeta, setMeta } from "../state/sqlite.ts";
import type { DedupKey, DedupStore } from "./interface.ts";

export interface SqliteDedupOptions {
  windowSeconds: number;
  /** How often pending keys are written to SQLite. */
  persistIntervalMs?: number;
  now?: () => number;
  onError?: (err: Error) => void;
}

const CHECKPOINT = "dedup.checkpoint";
/**
 * Keys per SQLite transaction when the timer persists. Inserting random messageIds
 * into a large index costs several microseconds each, so writing a whole interval's
 * keys at once held the event loop for tens of milliseconds at high rates (the p99
 * of every request behind it); a chunk of this size takes about a millisecond.
 */
const CHUNK = 256;
/**
 * Keys waiting for SQLite beyond which the timer's write stops yielding between chunks.
 * Under a sustained load heavier than SQLite can index, ingestion then waits for the
 * writes (as it did when they were one transaction) instead of the backlog, and memory,
 * growing without bound.
 */
const MAX_BACKLOG = 20_000;
/** Above this many ids, `seen` asks SQLite in one statement per BULK ids, not one per id. */
const BULK_LOOKUP = 16;
const BULK = 128;

type Pending = Map<string, Map<string, number>>;

/**
 * Dedup keys in SQLite, with an in-memory front for keys not yet persisted. The log
 * position the keys cover is written with the last of them, so after a crash the keys
 * of every event past the checkpoint are rebuilt from the log (see `replay`).
 */
export class SqliteDedupStore implements DedupStore {
  /** sourceId -> messageId -> seenAt (ms), not yet handed to SQLite. */
  private front: Pending = new Map();
  private frontUpTo: LogPosition | undefined;
  /** Keys in `front` (kept as a count: summing map sizes on every chunk is not free). */
  private frontKeys = 0;
  /** Keys being written chunk by chunk; `seen` consults them until they are all in. */
  private writing: Pending = new Map();
  private writingUpTo: LogPosition | undefined;
  private writer: Promise<void> | null = null;
  /** Bumped by a synchronous `persist`, which makes a chunked write in progress stop. */
  private generation = 0;
  private timer: ReturnType<typeof setInterval>;
  private readonly now: () => number;
  private readonly lookup;
  private readonly lookupMany;
  private readonly insert;
  private readonly expire;
  private readonly sweep;
  private readonly remove;
  /** Where the incremental prune goes on from (primary-key order; wraps round). */
  private sweepFrom: [string, string] = ["", ""];

  constructor(
    private readonly db: Database,
    private readonly opts: SqliteDedupOptions,
  ) {
    this.now = opts.now ?? Date.now;
    db.exec(`CREATE TABLE IF NOT EXISTS dedup_keys (
      source_id TEXT NOT NULL, message_id TEXT NOT NULL, seen_at INTEGER NOT NULL,
      PRIMARY KEY (source_id, message_id)) WITHOUT ROWID`);
    this.lookup = db.query<{ seen_at: number }, [string, string]>(
      "SELECT seen_at FROM dedup_keys WHERE source_id = ? AND message_id = ?",
    );
    this.lookupMany = db.query<{ message_id: string; seen_at: number }, string[]>(
      "SELECT message_id, seen_at FROM dedup_keys WHERE source_id = ? AND message_id IN " +
        `(${Array(BULK).fill("?").join(", ")})`,
    );
    this.insert = db.query(
      "INSERT INTO dedup_keys (source_id, message_id, seen_at) VALUES (?, ?, ?) " +
        "ON CONFLICT DO UPDATE SET seen_at = excluded.seen_at",
    );
    this.expire = db.query("DELETE FROM dedup_keys WHERE seen_at < ?");
    this.sweep = db.query<
      { source_id: string; message_id: string; seen_at: number },
      [string, string, number]
    >(
      "SELECT source_id, message_id, seen_at FROM dedup_keys WHERE (source_id, message_id) > (?, ?) " +
        "ORDER BY source_id, message_id LIMIT ?",
    );
    this.remove = db.query("DELETE FROM dedup_keys WHERE source_id = ? AND message_id = ?");
    this.timer = setInterval(() => {
      this.guard(() => this.pruneStep());
      this.writer ??= this.persistInChunks()
        .catch((err) => opts.onError?.(err as Error))
        .finally(() => {
          this.writer = null;
        });
    }, opts.persistIntervalMs ?? 200);
    this.timer.unref?.();
  }

  async seen(sourceId: string, messageIds: string[]): Promise<Set<string>> {
    const found = new Set<string>();
    const since = this.now() - this.opts.windowSeconds * 1000;
    const front = this.front.get(sourceId);
    const writing = this.writing.get(sourceId);
    const unknown: string[] = [];
    for (const id of messageIds) {
      const at = front?.get(id) ?? writing?.get(id);
      if (at === undefined) unknown.push(id);
      else if (at >= since) found.add(id);
    }
    let i = 0;
    for (; unknown.length - i > BULK_LOOKUP; i += BULK) {
      const ids = unknown.slice(i, i + BULK);
      // Short last slice: repeat its last id to fill the statement's placeholders.
      while (ids.length < BULK) ids.push(ids[ids.length - 1]!);
      for (const row of this.lookupMany.all(sourceId, ...ids)) {
        if (row.seen_at >= since) found.add(row.message_id);
      }
    }
    for (const id of unknown.slice(i)) {
      const at = this.lookup.get(sourceId, id)?.seen_at;
      if (at !== undefined && at >= since) found.add(id);
    }
    return found;
  }

  remember(keys: DedupKey[], upTo: LogPosition, at = this.now()): void {
    for (const k of keys) {
      let m = this.front.get(k.sourceId);
      if (!m) {
        m = new Map();
        this.front.set(k.sourceId, m);
      }
      const before = m.size;
      m.set(k.messageId, at);
      this.frontKeys += m.size - before;
    }
    this.frontUpTo = upTo;
  }

  checkpoint(): LogPosition | undefined {
    const raw = getMeta(this.db, CHECKPOINT);
    return raw ? (JSON.parse(raw) as LogPosition) : undefined;
  }

  /**
   * Writes every key not yet in SQLite, and the log position they cover, in one
   * transaction (on close, and in tests). Any chunked write in progress stops.
   */
  persist(): void {
    this.generation++;
    const upTo = this.frontUpTo ?? this.writingUpTo;
    if (!upTo) return;
    const keys = merge(this.takeWriting(), this.front);
    this.front = new Map();
    this.frontKeys = 0;
    this.frontUpTo = undefined;
    try {
      this.writeAll(keys, upTo);
    } catch (err) {
      this.restore(keys, upTo);
      throw err;
    }
  }

  /**
   * Deletes expired keys among the next `rows` of the table, in key order, and moves on;
   * each timer tick takes one step. A single `DELETE … WHERE seen_at < ?` has no index
   * to use and would scan the whole table on the event loop (seconds at millions of
   * keys); stepping keeps each tick to a few milliseconds, and a full sweep still runs
   * far more often than once per window. Lookups ignore expired keys either way.
   */
  pruneStep(rows = 2000): number {
    const page = this.sweep.all(this.sweepFrom[0], this.sweepFrom[1], rows);
    const last = page.at(-1);
    this.sweepFrom = page.length < rows || !last ? ["", ""] : [last.source_id, last.message_id];
    const since = this.now() - this.opts.windowSeconds * 1000;
    const old = page.filter((r) => r.seen_at < since);
    if (old.length > 0) {
      this.db.transaction(() => {
        for (const r of old) this.remove.run(r.source_id, r.message_id);
      })();
    }
    return old.length;
  }

  /** Deletes every key older than the window (a full scan: for tests and tools). */
  prune(): number {
    return this.expire.run(this.now() - this.opts.windowSeconds * 1000).changes;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.writer;
    this.persist();
  }

  /**
   * The timer's write: the front's keys in sorted order (neighbouring keys share index
   * pages) and in chunks of CHUNK, yielding to the event loop between chunks. The
   * checkpoint moves with the last chunk, so a crash midway only means a longer replay.
   */
  private async persistInChunks(): Promise<void> {
    const upTo = this.frontUpTo;
    if (!upTo) return;
    const generation = this.generation;
    const keys = this.front;
    this.writing = keys;
    this.writingUpTo = upTo;
    this.front = new Map();
    this.frontKeys = 0;
    this.frontUpTo = undefined;
    const rows = sortedRows(keys);
    try {
      // At least one transaction: with no keys, the checkpoint alone moves.
      for (let i = 0; i === 0 || i < rows.length; i += CHUNK) {
        const last = i + CHUNK >= rows.length;
        this.db.transaction(() => {
          for (const [sourceId, messageId, at] of rows.slice(i, i + CHUNK)) {
            this.insert.run(sourceId, messageId, at);
          }
          if (last) setMeta(this.db, CHECKPOINT, JSON.stringify(upTo));
        })();
        const backlog = rows.length - (i + CHUNK) + this.frontKeys;
        if (!last && backlog <= MAX_BACKLOG) {
          await new Promise((resolve) => setImmediate(resolve));
          if (this.generation !== generation) return; // persist() wrote everything
        }
      }
      this.takeWriting();
    } catch (err) {
      if (this.generation === generation) this.restore(this.takeWriting(), upTo);
      throw err;
    }
  }

  private writeAll(keys: Pending, upTo: LogPosition): void {
    this.db.transaction(() => {
      for (const [sourceId, messageId, at] of sortedRows(keys)) {
        this.insert.run(sourceId, messageId, at);
      }
      setMeta(this.db, CHECKPOINT, JSON.stringify(upTo));
    })();
  }

  private takeWriting(): Pending {
    const writing = this.writing;
    this.writing = new Map();
    this.writingUpTo = undefined;
    return writing;
  }

  /**
   * A failed write: the keys go back in front of newer ones. They still guard this run,
   * and the log rebuilds them on the next start because the checkpoint did not move.
   */
  private restore(keys: Pending, upTo: LogPosition): void {
    this.front = merge(keys, this.front);
    this.frontKeys = 0;
    for (const ids of this.front.values()) this.frontKeys += ids.size;
    this.frontUpTo = this.frontUpTo ?? upTo;
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.opts.onError?.(err as Error);
    }
  }
}

/** `newer`'s keys added to `older` (newer times win). */
function merge(older: Pending, newer: Pending): Pending {
  for (const [sourceId, ids] of newer) {
    const into = older.get(sourceId);
    if (!into) older.set(sourceId, ids);
    else for (const [id, at] of ids) into.set(id, at);
  }
  return older;
}

/** Rows in index order (source, then messageId); the default sort compares natively. */
function sortedRows(keys: Pending): [string, string, number][] {
  const rows: [string, string, number][] = [];
  for (const sourceId of [...keys.keys()].sort()) {
    const ids = keys.get(sourceId)!;
    for (const messageId of [...ids.keys()].sort())
      rows.push([sourceId, messageId, ids.get(messageId)!]);
  }
  return rows;
}
