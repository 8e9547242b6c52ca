import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { openStateDb } from "../../state/sqlite.ts";
import type { DeliveryFailure } from "../interface.ts";
import type { DeadLetter, DeadLetterCount, DeadLetterStore, NewDeadLetter } from "./interface.ts";

interface Row {
  id: string;
  connection_id: string;
  created_at: number;
  last_attempt_at: number;
  stage: string;
  attempts: number;
  failure: string;
  origins: string;
  events: string;
}

/**
 * Dead letters in the state database (`<dataDir>/state.db`, table `dead_letters`), on
 * a handle of their own with `synchronous = FULL`: a letter is on disk before the
 * connection's offset moves past its events, whatever the rest of the state does.
 */
export class SqliteDeadLetterStore implements DeadLetterStore {
  private readonly insert;
  private readonly page;
  private readonly one;
  private readonly tally;
  private readonly update;
  private readonly delete;

  private constructor(private readonly db: Database) {
    this.insert = db.query(
      "INSERT INTO dead_letters (id, connection_id, created_at, last_attempt_at, stage, " +
        "attempts, event_count, failure, origins, events) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    this.page = db.query<Row, [string, string, number]>(
      "SELECT * FROM dead_letters WHERE connection_id = ? AND id > ? ORDER BY id LIMIT ?",
    );
    this.one = db.query<Row, [string, string]>(
      "SELECT * FROM dead_letters WHERE connection_id = ? AND id = ?",
    );
    this.tally = db.query<{ connection_id: string; letters: number; events: number }, []>(
      "SELECT connection_id, count(*) AS letters, sum(event_count) AS events " +
        "FROM dead_letters GROUP BY connection_id",
    );
    this.update = db.query(
      "UPDATE dead_letters SET failure = ?, attempts = attempts + 1, last_attempt_at = ? " +
        "WHERE connection_id = ? AND id = ?",
    );
    this.delete = db.query("DELETE FROM dead_letters WHERE connection_id = ? AND id = ?");
  }

  /** Opens the store on its own handle to `<dataDir>/state.db`, creating its table. */
  static open(dataDir: string): SqliteDeadLetterStore {
    const db = openStateDb(dataDir);
    db.exec("PRAGMA synchronous = FULL");
    createTable(db);
    return new SqliteDeadLetterStore(db);
  }

  /**
   * Opens the store read-only (the CLI, beside a running server): writes fail. A data
   * dir without one reads as empty.
   */
  static openReadOnly(dataDir: string): SqliteDeadLetterStore {
    const file = join(dataDir, "state.db");
    const db = existsSync(file)
      ? new Database(file, { readonly: true, strict: true })
      : new Database(":memory:", { strict: true });
    db.exec("PRAGMA busy_timeout = 5000");
    const exists = db
      .query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'dead_letters'")
      .get();
    if (!exists) {
      db.close();
      const empty = new Database(":memory:", { strict: true });
      createTable(empty);
      return new SqliteDeadLetterStore(empty);
    }
    return new SqliteDeadLetterStore(db);
  }

  async add(letter: NewDeadLetter): Promise<DeadLetter> {
    const at = letter.at ?? Date.now();
    const stored: DeadLetter = {
      id: Bun.randomUUIDv7(),
      connectionId: letter.connectionId,
      createdAt: at,
      lastAttemptAt: at,
      stage: letter.stage,
      events: letter.events,
      origins: letter.origins,
      failure: letter.failure,
      attempts: letter.attempts,
    };
    this.insert.run(
      stored.id,
      stored.connectionId,
      stored.createdAt,
      stored.lastAttemptAt,
      stored.stage,
      stored.attempts,
      stored.events.length,
      JSON.stringify(stored.failure),
      JSON.stringify(stored.origins),
      JSON.stringify(stored.events),
    );
    return stored;
  }

  async list(
    connectionId: string,
    opts: { limit?: number; after?: string } = {},
  ): Promise<DeadLetter[]> {
    return this.page.all(connectionId, opts.after ?? "", opts.limit ?? 100).map(fromRow);
  }

  async get(connectionId: string, id: string): Promise<DeadLetter | undefined> {
    const row = this.one.get(connectionId, id);
    return row ? fromRow(row) : undefined;
  }

  async counts(): Promise<Map<string, DeadLetterCount>> {
    return new Map(
      this.tally.all().map((r) => [r.connection_id, { letters: r.letters, events: r.events }]),
    );
  }

  async failedAgain(
    connectionId: string,
    id: string,
    failure: DeliveryFailure,
    at = Date.now(),
  ): Promise<void> {
    this.update.run(JSON.stringify(failure), at, connectionId, id);
  }

  async remove(connectionId: string, id: string): Promise<boolean> {
    return this.delete.run(connectionId, id).changes > 0;
  }

  close(): void {
    this.db.close();
  }
}

function createTable(db: Database): void {
  db.exec(`CREATE TABLE IF NOT EXISTS dead_letters (
    id TEXT PRIMARY KEY, connection_id TEXT NOT NULL, created_at INTEGER NOT NULL,
    last_attempt_at INTEGER NOT NULL, stage TEXT NOT NULL, attempts INTEGER NOT NULL,
    event_count INTEGER NOT NULL, failure TEXT NOT NULL, origins TEXT NOT NULL,
    events TEXT NOT NULL)`);
  db.exec(
    "CREATE INDEX IF NOT EXISTS dead_letters_by_connection ON dead_letters (connection_id, id)",
  );
}

function fromRow(r: Row): DeadLetter {
  return {
    id: r.id,
    connectionId: r.connection_id,
    createdAt: r.created_at,
    lastAttemptAt: r.last_attempt_at,
    stage: r.stage === "functions" ? "functions" : "destination",
    attempts: r.attempts,
    failure: JSON.parse(r.failure) as DeliveryFailure,
    origins: JSON.parse(r.origins) as DeadLetter["origins"],
    events: JSON.parse(r.events) as DeadLetter["events"],
  };
}
