import type { Database } from "bun:sqlite";
import type { LogPosition } from "../log/interface.ts";
import { getMeta, setMeta } from "../state/sqlite.ts";
import type { DedupKey, DedupStore } from "./interface.ts";

export interface SqliteDedupOptions {
  windowSeconds: number;
  /** How often pending keys are written to SQLite, in one transaction. */
  persistIntervalMs?: number;
  now?: () => number;
  onError?: (err: Error) => void;
}

const CHECKPOINT = "dedup.checkpoint";

/**
 * Dedup keys in SQLite, with an in-memory front for keys not yet persisted. Keys and
 * the log position they cover are written in one transaction, so after a crash the
 * keys of every event past the checkpoint are rebuilt from the log (see `replay`).
 */
export class SqliteDedupStore implements DedupStore {
  /** sourceId -> messageId -> seenAt (ms), not yet in SQLite. */
  private front = new Map<string, Map<string, number>>();
  private frontUpTo: LogPosition | undefined;
  private timer: ReturnType<typeof setInterval>;
  private readonly now: () => number;
  private readonly lookup;
  private readonly insert;
  private readonly expire;

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
    this.insert = db.query(
      "INSERT INTO dedup_keys (source_id, message_id, seen_at) VALUES (?, ?, ?) " +
        "ON CONFLICT DO UPDATE SET seen_at = excluded.seen_at",
    );
    this.expire = db.query("DELETE FROM dedup_keys WHERE seen_at < ?");
    let ticks = 0;
    this.timer = setInterval(() => {
      try {
        this.persist();
        if (++ticks % 300 === 0) this.prune();
      } catch (err) {
        opts.onError?.(err as Error);
      }
    }, opts.persistIntervalMs ?? 200);
    this.timer.unref?.();
  }

  async seen(sourceId: string, messageIds: string[]): Promise<Set<string>> {
    const found = new Set<string>();
    const since = this.now() - this.opts.windowSeconds * 1000;
    const front = this.front.get(sourceId);
    for (const id of messageIds) {
      const at = front?.get(id) ?? this.lookup.get(sourceId, id)?.seen_at;
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
      m.set(k.messageId, at);
    }
    this.frontUpTo = upTo;
  }

  checkpoint(): LogPosition | undefined {
    const raw = getMeta(this.db, CHECKPOINT);
    return raw ? (JSON.parse(raw) as LogPosition) : undefined;
  }

  /** Writes the in-memory keys and their log position in one transaction. */
  persist(): void {
    const upTo = this.frontUpTo;
    if (!upTo) return;
    const front = this.front;
    this.front = new Map();
    this.frontUpTo = undefined;
    try {
      this.db.transaction(() => {
        for (const [sourceId, ids] of front) {
          for (const [messageId, at] of ids) this.insert.run(sourceId, messageId, at);
        }
        setMeta(this.db, CHECKPOINT, JSON.stringify(upTo));
      })();
    } catch (err) {
      // Keep the keys in memory: they still guard this run, and the log rebuilds them
      // on the next start because the checkpoint did not move.
      for (const [sourceId, ids] of this.front) {
        const old = front.get(sourceId) ?? new Map<string, number>();
        for (const [id, at] of ids) old.set(id, at);
        front.set(sourceId, old);
      }
      this.front = front;
      this.frontUpTo = this.frontUpTo ?? upTo;
      throw err;
    }
  }

  /** Deletes keys older than the window. */
  prune(): number {
    return this.expire.run(this.now() - this.opts.windowSeconds * 1000).changes;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.persist();
  }
}
