import type { ConnectionConfig } from "../config/schema.ts";
import type { ConnectionHealth, ConnectionRunState } from "./health.ts";

/**
 * One connection's state (SPEC 8), in the shape of SPEC 11's `/admin/api/connections`.
 * `/metrics`, the admin API, the inspector and the CLI all read it from
 * `DeliveryManager.connectionStates()`.
 */
export interface ConnectionState {
  id: string;
  source: string;
  destination: { type: string };
  state: ConnectionRunState;
  /**
   * Events of its source not yet confirmed, and the age of the oldest of them; null
   * while not known yet (the file log counts a backlog in the background after start).
   */
  lag: { events: number | null; seconds: number | null };
  /** ISO time of the last batch the destination confirmed (since the server started). */
  lastSuccessAt: string | null;
  lastError: { at: string; message: string } | null;
  /** Failed attempts since the last success. */
  attempts: number;
  /** Events held in its dead letters. */
  deadLetters: number;
  /** It holds back a log segment retention would delete (it is behind). */
  retentionHeld: boolean;
}

export interface StateInputs {
  connection: ConnectionConfig;
  health: ConnectionHealth;
  paused: boolean;
  lag: { events: number | null; seconds: number | null };
  deadLetters: number;
  retentionHeld: boolean;
}

export function connectionState(i: StateInputs): ConnectionState {
  const { health } = i;
  return {
    id: i.connection.id,
    source: i.connection.source,
    destination: { type: i.connection.destination.type },
    // `failing` says a batch went to the dead letters; once none are left (a redrive,
    // perhaps from the CLI) there is nothing to repair any more.
    state:
      i.deadLetters === 0 && health.phase === "failing"
        ? i.paused
          ? "paused"
          : "running"
        : health.state(i.paused),
    lag: i.lag,
    lastSuccessAt: health.lastSuccessAt === null ? null : iso(health.lastSuccessAt),
    lastError: health.lastError && {
      at: iso(health.lastError.at),
      message: health.lastError.message,
    },
    attempts: health.attempts,
    deadLetters: i.deadLetters,
    retentionHeld: i.retentionHeld,
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
