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
      const rows = events.map(toRow);
      await this
        .sql`INSERT INTO ${this.sql(this.table)} ${this.sql(rows)} ON CONFLICT (message_id) DO NOTHING`;
      return { ok: true };
    } catch (err) {
      this.ready = null;
      return { ok: false, retry: true, reason: `postgres: ${(err as Error).message}` };
    }
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

function toRow(e: StoredEvent) {
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
