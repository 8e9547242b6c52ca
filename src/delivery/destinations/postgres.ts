import { SQL } from "bun";
import type { StoredEvent } from "../../events/schema.ts";
import {
  type DeliveryFailure,
  type DeliveryOutcome,
  type Destination,
  trimmed,
} from "../interface.ts";

export interface PostgresOptions {
  url: string;
  table?: string;
}

/**
 * Inserts each batch into a table it creates if missing. `ON CONFLICT (message_id) DO
 * NOTHING` makes redelivery and replay harmless; a database that is down is retried,
 * never skipped; one that refuses us for good (permission, no such database) is not.
 */
export class PostgresDestination implements Destination {
  readonly type = "postgres";
  private readonly sql: SQL;
  private readonly table: string;
  private ready: Promise<void> | null = null;

  constructor(opts: PostgresOptions) {
    this.sql = new SQL({ url: opts.url, max: 2, idleTimeout: 30, connectionTimeout: 5 });
    this.table = opts.table ?? "events";
  }

  async deliver(events: StoredEvent[]): Promise<DeliveryOutcome> {
    try {
      await this.insertBatch(events);
      return { ok: true };
    } catch (err) {
      const kind = classify(err);
      if (kind === "data") return this.deliverOneByOne(events);
      this.ready = null;
      return { ok: false, transient: kind === "transient", failure: failureOf(err) };
    }
  }

  /** Creates the table once (again after it went missing), then inserts the rows. */
  private async insertBatch(events: StoredEvent[]): Promise<void> {
    this.ready ??= this.createTable();
    await this.ready;
    try {
      await this.insert(events.map(toRow));
    } catch (err) {
      // Dropped while we ran: created again once; a table still missing is permanent.
      if (sqlState(err) !== "42P01") throw err;
      this.ready = this.createTable();
      await this.ready;
      await this.insert(events.map(toRow));
    }
  }

  /**
   * A batch the database refused for its content (bad data, a constraint): insert the
   * events one by one so that only those it refuses are dead-lettered, and one bad
   * event never holds the connection up for good.
   */
  private async deliverOneByOne(events: StoredEvent[]): Promise<DeliveryOutcome> {
    const rejected: { event: StoredEvent; failure: DeliveryFailure }[] = [];
    for (const event of events) {
      try {
        await this.insert([toRow(event)]);
      } catch (err) {
        const kind = classify(err);
        if (kind !== "data") {
          return { ok: false, transient: kind === "transient", failure: failureOf(err) };
        }
        rejected.push({ event, failure: failureOf(err) });
      }
    }
    return { ok: true, rejected };
  }

  private async insert(rows: ReturnType<typeof toRow>[]): Promise<void> {
    await this
      .sql`INSERT INTO ${this.sql(this.table)} ${this.sql(rows)} ON CONFLICT (message_id) DO NOTHING`;
  }

  private async createTable(): Promise<void> {
    await this.sql`CREATE TABLE IF NOT EXISTS ${this.sql(this.table)} (
      message_id TEXT PRIMARY KEY,
      type TEXT NOT NULL,
      event TEXT,
      user_id TEXT,
      anonymous_id TEXT,
      timestamp TIMESTAMPTZ,
      received_at TIMESTAMPTZ,
      source_id TEXT,
      properties JSONB,
      traits JSONB,
      context JSONB,
      data JSONB NOT NULL
    )`;
  }

  async close(): Promise<void> {
    await this.sql.close();
  }
}

/** The SQLSTATE of a server error (Bun.sql puts it in `errno`). */
function sqlState(err: unknown): string | undefined {
  const state = (err as { errno?: unknown }).errno;
  return typeof state === "string" ? state : undefined;
}

/**
 * How a failure is handled, by SQLSTATE class:
 * - `data` (22 data exception, 23 integrity constraint): the rows themselves are
 *   refused; the batch is retried one event at a time so only those are dead-lettered;
 * - `permanent` (42 missing table/column, permission; 28 authentication; 3D000 no such
 *   database; 3F000 no such schema): no retry can fix it, a person must; dead-lettered;
 * - `transient`: everything else (connection refused or lost, 08 connection, 53
 *   resources, 57 shutdown, 40 rollback): retried with backoff, never skipped.
 */
function classify(err: unknown): "data" | "permanent" | "transient" {
  const state = sqlState(err);
  if (state === undefined) return "transient";
  if (state.startsWith("22") || state.startsWith("23")) return "data";
  if (state.startsWith("42") || state.startsWith("28") || state === "3D000" || state === "3F000")
    return "permanent";
  return "transient";
}

function failureOf(err: unknown): DeliveryFailure {
  const state = sqlState(err);
  const message = trimmed((err as Error).message ?? String(err));
  return state
    ? { status: state, message: `postgres ${state}: ${message}` }
    : { message: `postgres: ${message}` };
}

/** PostgreSQL text and JSONB cannot hold U+0000: it is dropped from the stored copy. */
function withoutNul(e: StoredEvent): StoredEvent {
  const json = JSON.stringify(e);
  if (!json.includes("\\u0000")) return e;
  // An escaped NUL is \u0000 after an even number of backslashes (an odd number means
  // the text "\u0000" itself, which stays).
  return JSON.parse(json.replace(/(?<!\\)((?:\\\\)*)\\u0000/g, "$1")) as StoredEvent;
}

function toRow(event: StoredEvent) {
  const e = withoutNul(event);
  const obj = (v: unknown) => (typeof v === "object" && v !== null ? v : null);
  const str = (v: unknown) => (typeof v === "string" ? v : null);
  return {
    message_id: e.messageId,
    type: e.type,
    event: str(e.event),
    user_id: str(e.userId),
    anonymous_id: str(e.anonymousId),
    timestamp: str(e.timestamp),
    received_at: str(e.receivedAt),
    source_id: str(e.sourceId),
    properties: obj(e.properties),
    traits: obj(e.traits),
    context: obj(e.context),
    data: e,
  };
}
