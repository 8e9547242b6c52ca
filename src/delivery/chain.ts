import type { ConnectionConfig } from "../config/schema.ts";
import type { StoredEvent } from "../events/schema.ts";
import type { ExecLogEntry, LogEntry } from "../functions/protocol.ts";

/** What a connection's function chain made of one stored event at delivery. */
export type ChainOutcome =
  /** The events to deliver (none: dropped), with what the functions logged. */
  | { events: StoredEvent[]; execLog: ExecLogEntry[]; logs: LogEntry[] }
  /** A function asked for the event to be tried again later (it threw RetryError). */
  | { retry: string; execLog: ExecLogEntry[]; logs: LogEntry[] }
  /**
   * The chain could not run. `userCode`: the user's function itself failed (ran past its
   * timeout), so a retry tends to fail the same way; otherwise the runtime did (its
   * host restarting, a queue past its limit), which passes.
   */
  | { failed: string; userCode: boolean };

/** Runs a connection's functions over one event; identity when it has none. */
export type ChainRunner = (
  connection: ConnectionConfig,
  event: StoredEvent,
  retries: number,
) => Promise<ChainOutcome>;
