import { SQL } from "bun";
import type { StoredEvent } from "../../events/schema.ts";
import type { DeliveryOutcome, Destination } from "../interface.ts";

export interface PostgresOptions {
  url: string;
  table?: string;
}

/**
 * Inserts each batch into a table it creates if missing. `ON CONFLICT (message_id) DO
 * NOTHING` makes redelivery harmless; a database that is down is retried, never skipped.
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
      this.ready ??= this.createTable();
      await this.ready;
      await this.insert(events.map(toRow));
      return { ok: true };
    } catch (err) {
      if (isPermanent(err)) return this.deliverOneByOne(events);
      this.ready = null;
      return { ok: false, retry: true, reason: `postgres: ${(err as Error).message}` };
    }
  }

  /**
   * A batch the database refused for its content (bad data, a constraint): insert the
   * events one by one so that only those it refuses are dead-lettered, and one bad
   * event never holds the connection up for good.
   */
  private async deliverOneByOne(events: StoredEvent[]): Promise<DeliveryOutcome> {
    const rejected: { event: StoredEvent; reason: string }[] = [];
    for (const event of events) {
      try {
        await this.insert([toRow(event)]);
      } catch (err) {
        if (!isPermanent(err)) {
          return { ok: false, retry: true, reason: `postgres: ${(err as Error).message}` };
        }
        rejected.push({ event, reason: `postgres: ${(err as Error).message}` });
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

/**
 * Whether the database refused the data itself (SQLSTATE class 22 data exception, 23
 * integrity constraint), which no retry can fix. Connection failures, resource limits
 * and the rest are passing: retried for ever.
 */
function isPermanent(err: unknown): boolean {
  const state = (err as { errno?: unknown }).errno;
  return typeof state === "string" && (state.startsWith("22") || state.startsWith("23"));
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
