import type { ExecLogEntry, LogEntry } from "../../functions/protocol.ts";
import type { EventOrigin } from "../dead-letters/interface.ts";

/** One step of a stored event's way out through one connection (SPEC 11's event path). */
export type TraceEntry =
  /** The connection's functions ran over it: their exec log, what they logged, what came out. */
  | {
      kind: "functions";
      retries: number;
      execLog: ExecLogEntry[];
      logs: LogEntry[];
      /** Events the chain handed on (0: dropped, or asked to be retried). */
      output: number;
    }
  /** A delivery attempt of a batch that carried it (`via` a replay or a redrive). */
  | {
      kind: "attempt";
      attempt: number;
      /** The attempt id (`X-Sluice-Delivery`). */
      deliveryId: string;
      ok: boolean;
      status?: number | string;
      error?: string;
      via?: "replay" | "redrive";
    }
  /** It went to the dead letters. */
  | { kind: "dead-letter"; deadLetterId: string; error: string }
  /** A replay re-sent it (`ok`: the destination confirmed). */
  | { kind: "replay"; replayId: string; ok: boolean; error?: string };

export interface TraceRecord {
  connectionId: string;
  /** The stored event this is about (after functions, output events keep their origin). */
  sourceId: string;
  messageId: string;
  /** Its receivedAt (ms since the epoch). */
  receivedAt: number;
  /** ms since the epoch. */
  at: number;
  entry: TraceEntry;
}

/**
 * What happened to each stored event on its way out, kept bounded (the newest records
 * win) for the inspector. Recording never holds delivery up nor fails it: a record
 * that cannot be written is logged and dropped.
 */
export interface DeliveryTrace {
  record(records: TraceRecord[]): void;
  /** Everything kept about one stored event, oldest first. */
  forEvent(event: EventOrigin): Promise<TraceRecord[]>;
  close(): void;
}
