import { Database, type Statement } from "bun:sqlite";
import { mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import type { IndexRow } from "./keys.ts";

/** What a search asks of the index, besides the driving key. */
export interface ShardFilter {
  /** The key whose rows are walked (most selective given), or none: walk every event. */
  key?: bigint;
  /** Further keys every hit must also have. */
  alsoKeys: bigint[];
  source?: string;
  type?: string;
  /** receivedAt bounds, ms: from inclusive, to exclusive. */
  from?: number;
  to?: number;
}

/** One hit: the event's sequence number (its order in the log) and where it is stored. */
export interface Hit {
  seq: number;
  ref: string;
  mh: bigint;
  /** When its record became durable (ms since the epoch); null when not known. */
  stored: number | null;
}

interface Shard {
  /** First sequence number the shard holds. */
  lo: number;
  db: Database;
  /** Whether its events table has the `stored` column (shards written before it lack it). */
  stored: boolean;
  /** Its file's inode (a read-only view): a shard deleted and made again under the same name is another file. */
  ino?: number;
  /** Absent in a read-only view. */
  writes?: {
    insertEvent: Statement;
    insertKey: Statement;
    setProgress: Statement;
  };
}

export interface IndexShardsOptions {
  /** Events per shard file. */
  shardEvents?: number;
  /**
   * A view for searches beside a writer in another thread (src/admin/search/
   * index-writer.ts): opens shards read-only, and `refresh` picks up the shards the
   * writer added and lets go of those it dropped.
   */
  readOnly?: boolean;
}

const NAME = /^events-(\d{12})\.db$/;

/**
 * The search index on disk: SQLite files ("shards") under `dir`, each holding the
 * next `shardEvents` stored events in log order. Each event has a row (sequence
 * number, source, type, receivedAt, log ref, event hash, stored time) and one key row per
 * searched field (a 64-bit hash of field and value → sequence number, in a table
 * ordered by key then sequence, so "newest with this id" is one b-tree descent).
 * Old shards are dropped whole once the log no longer holds their events: expiry
 * costs a file deletion, never row-by-row deletes. The index is derived data:
 * losing it only costs a rebuild from the log.
 */
export class IndexShards {
  private shards: Shard[] = [];
  private readonly shardEvents: number;
  private readonly readOnly: boolean;

  constructor(
    private readonly dir: string,
    opts: IndexShardsOptions | number = {},
  ) {
    const o = typeof opts === "number" ? { shardEvents: opts } : opts;
    this.shardEvents = o.shardEvents ?? 1_000_000;
    this.readOnly = o.readOnly ?? false;
    mkdirSync(dir, { recursive: true });
    if (this.readOnly) this.refresh();
    else for (const lo of this.found()) this.shards.push(this.open(lo));
  }

  /**
   * A read-only view: opens the shards the writer has added since (once they hold
   * their first committed rows) and closes those it has dropped. Costs a directory
   * listing; searches call it first.
   */
  refresh(): void {
    if (!this.readOnly) return;
    const found = new Set(this.found());
    const kept: Shard[] = [];
    for (const shard of this.shards) {
      if (!found.has(shard.lo) || this.inode(shard.lo) !== shard.ino) {
        // Dropped, or the index was made again (`clear`) and this name is a new file.
        closeShard(shard);
        continue;
      }
      // The writer adds the column to an older shard when it opens it.
      if (!shard.stored) shard.stored = hasStoredColumn(shard.db);
      kept.push(shard);
    }
    for (const lo of found) {
      if (kept.some((s) => s.lo === lo)) continue;
      // Newer shards only: an older one never reappears once dropped.
      if (kept.length > 0 && lo < kept[0]!.lo) continue;
      const shard = this.openReadOnly(lo);
      if (!shard) break; // not committed yet: neither it nor a later one is usable
      kept.push(shard);
    }
    this.shards = kept.sort((a, b) => a.lo - b.lo);
  }

  private found(): number[] {
    return readdirSync(this.dir)
      .map((f) => NAME.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
  }

  private inode(lo: number): number | undefined {
    try {
      return statSync(join(this.dir, fileName(lo))).ino;
    } catch {
      return undefined;
    }
  }

  /**
   * Deletes every shard: the index starts again from the log's beginning (the log it
   * was written from is not there any more: a NATS stream deleted and created again).
   */
  clear(): void {
    if (this.readOnly) throw new Error("a read-only view of the search index");
    for (const shard of this.shards) {
      closeShard(shard);
      for (const suffix of ["", "-wal", "-shm"]) {
        rmSync(join(this.dir, `${fileName(shard.lo)}${suffix}`), { force: true });
      }
    }
    this.shards = [];
  }

  /** Where indexing goes on: the log's continuation token and the last sequence number. */
  progress(): { next: string | undefined; seq: number } {
    const newest = this.shards.at(-1);
    if (!newest) return { next: undefined, seq: 0 };
    const row = newest.db.query("SELECT next, seq FROM progress WHERE id = 1").get() as {
      next: string | null;
      seq: bigint;
    } | null;
    return row
      ? { next: row.next ?? undefined, seq: Number(row.seq) }
      : { next: undefined, seq: newest.lo - 1 };
  }

  /**
   * Adds rows for the next events in log order, and the progress, in one transaction
   * (one per shard the rows fall in). A row's sequence number is its own `seq` when the
   * log numbers it (above the last one indexed), else the next one.
   */
  append(rows: IndexRow[], next: string): void {
    if (this.readOnly) throw new Error("a read-only view of the search index");
    let seq = this.progress().seq;
    let shard = this.shards.at(-1);
    let i = 0;
    do {
      const first = rows[i]?.seq ?? seq + 1;
      if (!shard || first - shard.lo >= this.shardEvents) {
        shard = this.open(first);
        this.shards.push(shard);
      }
      // The rows whose sequence numbers fall in this shard.
      const limit = shard.lo + this.shardEvents;
      let j = i;
      let s = seq;
      while (j < rows.length) {
        const rs = rows[j]!.seq ?? s + 1;
        if (rs >= limit) break;
        s = rs;
        j++;
      }
      const part = rows.slice(i, j);
      const start = seq;
      const w = shard.writes!;
      shard.db.transaction(() => {
        let s = start;
        for (const r of part) {
          s = r.seq ?? s + 1;
          w.insertEvent.run(s, r.source, r.type, r.received, r.ref, r.mh, r.stored);
          for (const k of r.keys) w.insertKey.run(k, s);
        }
        w.setProgress.run(j === rows.length ? next : null, s);
      })();
      seq = s;
      i = j;
    } while (i < rows.length);
  }

  /**
   * Hits below `below` (a sequence number), newest first, from at most `scan` key (or
   * event) rows walked: fewer than asked is not the end. `scanned` tells where the walk
   * stopped, so the next call goes on from there.
   */
  hits(f: ShardFilter, below: number, scan: number): { hits: Hit[]; stoppedAt: number } {
    const hits: Hit[] = [];
    let at = below;
    for (let i = this.shards.length - 1; i >= 0; i--) {
      const shard = this.shards[i]!;
      if (shard.lo >= at) continue;
      const walked = this.walk(shard, f, at, scan);
      hits.push(...walked.hits);
      scan -= walked.walked;
      if (scan <= 0) return { hits, stoppedAt: walked.lastSeq };
      at = shard.lo;
    }
    return { hits, stoppedAt: 0 };
  }

  private walk(shard: Shard, f: ShardFilter, below: number, scan: number) {
    const where: string[] = [];
    const args: (string | number | bigint)[] = [];
    if (f.source !== undefined) {
      where.push("e.source = ?");
      args.push(f.source);
    }
    if (f.type !== undefined) {
      where.push("e.type = ?");
      args.push(f.type);
    }
    if (f.from !== undefined) {
      where.push("e.received >= ?");
      args.push(f.from);
    }
    if (f.to !== undefined) {
      where.push("e.received < ?");
      args.push(f.to);
    }
    for (const k of f.alsoKeys) {
      where.push("EXISTS (SELECT 1 FROM keys k2 WHERE k2.h = ? AND k2.seq = e.seq)");
      args.push(k);
    }
    const walkSql =
      f.key === undefined
        ? "SELECT seq FROM events WHERE seq < ? ORDER BY seq DESC LIMIT ?"
        : "SELECT seq FROM keys WHERE h = ? AND seq < ? ORDER BY seq DESC LIMIT ?";
    const walkArgs = f.key === undefined ? [below, scan] : [f.key, below, scan];
    const bounds = shard.db
      .query(`SELECT count(*) AS n, min(seq) AS last FROM (${walkSql})`)
      .get(...walkArgs) as { n: bigint; last: bigint | null };
    const stored = shard.stored ? "e.stored" : "NULL";
    const sql = `SELECT e.seq AS seq, e.ref AS ref, e.mh AS mh, ${stored} AS stored FROM (${walkSql}) c JOIN events e ON e.seq = c.seq${
      where.length ? ` WHERE ${where.join(" AND ")}` : ""
    } ORDER BY e.seq DESC`;
    const rows = shard.db.query(sql).all(...walkArgs, ...args) as {
      seq: bigint;
      ref: string;
      mh: bigint;
      stored: bigint | null;
    }[];
    const hits = rows.map((r) => ({
      seq: Number(r.seq),
      ref: r.ref,
      mh: r.mh,
      stored: r.stored === null ? null : Number(r.stored),
    }));
    return {
      hits,
      walked: Number(bounds.n),
      lastSeq: bounds.last === null ? shard.lo : Number(bounds.last),
    };
  }

  /** The oldest shard's newest event (to see whether the log still holds it), if any. */
  oldestShardLast(): Omit<Hit, "stored"> | undefined {
    if (this.shards.length < 2) return undefined;
    const row = this.shards[0]!.db.query(
      "SELECT seq, ref, mh FROM events ORDER BY seq DESC LIMIT 1",
    ).get() as { seq: bigint; ref: string; mh: bigint } | null;
    return row ? { seq: Number(row.seq), ref: row.ref, mh: row.mh } : undefined;
  }

  /** Deletes the oldest shard (its events are gone from the log). */
  dropOldest(): void {
    if (this.readOnly) throw new Error("a read-only view of the search index");
    const shard = this.shards.shift();
    if (!shard) return;
    closeShard(shard);
    for (const suffix of ["", "-wal", "-shm"]) {
      rmSync(join(this.dir, `${fileName(shard.lo)}${suffix}`), { force: true });
    }
  }

  /** Events indexed (rows in every shard). */
  count(): number {
    return this.shards.reduce(
      (n, s) =>
        n + Number((s.db.query("SELECT count(*) AS n FROM events").get() as { n: bigint }).n),
      0,
    );
  }

  close(): void {
    for (const s of this.shards) closeShard(s);
    this.shards = [];
  }

  private open(lo: number): Shard {
    const db = new Database(join(this.dir, fileName(lo)), { create: true, safeIntegers: true });
    // Derived data: a crash may lose the last transactions, which are then indexed again
    // (the progress row commits with the rows it covers).
    db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; PRAGMA cache_size = -16000;");
    db.exec(`CREATE TABLE IF NOT EXISTS events (
      seq INTEGER PRIMARY KEY, source TEXT NOT NULL, type TEXT NOT NULL,
      received INTEGER NOT NULL, ref TEXT NOT NULL, mh INTEGER NOT NULL, stored INTEGER);
    CREATE TABLE IF NOT EXISTS keys (h INTEGER NOT NULL, seq INTEGER NOT NULL,
      PRIMARY KEY (h, seq)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS progress (id INTEGER PRIMARY KEY CHECK (id = 1),
      next TEXT, seq INTEGER NOT NULL);`);
    // A shard written before events had a stored time: theirs stays unknown (NULL).
    if (!hasStoredColumn(db)) db.exec("ALTER TABLE events ADD COLUMN stored INTEGER");
    return {
      lo,
      db,
      stored: true,
      writes: {
        insertEvent: db.prepare(
          "INSERT INTO events (seq, source, type, received, ref, mh, stored) VALUES (?, ?, ?, ?, ?, ?, ?)",
        ),
        insertKey: db.prepare("INSERT OR IGNORE INTO keys (h, seq) VALUES (?, ?)"),
        setProgress: db.prepare(
          "INSERT INTO progress (id, next, seq) VALUES (1, ?1, ?2) ON CONFLICT (id) DO UPDATE SET next = coalesce(?1, next), seq = ?2",
        ),
      },
    };
  }

  /** A shard the writer has committed rows to, opened read-only; else undefined. */
  private openReadOnly(lo: number): Shard | undefined {
    let db: Database | undefined;
    // Before the open: a file made again meanwhile reads as changed at the next refresh.
    const ino = this.inode(lo);
    try {
      db = new Database(join(this.dir, fileName(lo)), { readonly: true, safeIntegers: true });
      db.exec("PRAGMA busy_timeout = 1000; PRAGMA cache_size = -16000;");
      if (db.query("SELECT 1 FROM progress WHERE id = 1").get() === null) throw new Error("empty");
      return { lo, db, stored: hasStoredColumn(db), ino };
    } catch {
      db?.close();
      return undefined;
    }
  }
}

/**
 * Closes a shard's database for good, its prepared statements first: with one left,
 * SQLite's close is only deferred, and the files stay open until a collection finalizes
 * it (a dropped shard's space not freed meanwhile); that late close then deletes
 * `<name>-wal` by name, by then maybe a new shard's (after `clear`, the same first name).
 */
function closeShard(shard: Shard): void {
  const w = shard.writes;
  w?.insertEvent.finalize();
  w?.insertKey.finalize();
  w?.setProgress.finalize();
  shard.db.close();
}

function hasStoredColumn(db: Database): boolean {
  return db.query("SELECT 1 FROM pragma_table_info('events') WHERE name = 'stored'").get() !== null;
}

function fileName(lo: number): string {
  return `events-${String(lo).padStart(12, "0")}.db`;
}
