import { existsSync, readFileSync, statSync } from "node:fs";
import { deadLetterPath } from "../../delivery/dead-letter.ts";
import type { DeliveryManager } from "../../delivery/manager.ts";
import { comparePositions, type LogPosition } from "../../log/interface.ts";
import type {
  ConnectionPathView,
  ConnectionView,
  ControlOutcome,
  DeliveryControl,
  StoredEventRef,
} from "./control.ts";
import type { FunctionRunLog } from "./function-runs.ts";

/** Dead-letter files larger than this are not searched for one event's entry. */
const DEAD_LETTER_SCAN_BYTES = 32 * 1024 * 1024;

const UNAVAILABLE: ControlOutcome = {
  ok: false,
  reason: "unavailable",
  message: "not available yet",
};

/**
 * DeliveryControl over today's delivery engine: state, lag and dead-letter counts
 * from `DeliveryManager.status()`, an event's progress from each connection's offset,
 * its dead letter from the connection's dead-letter file, its function runs from the
 * in-memory run log. The engine does not yet track attempts, last success or errors,
 * nor pause, resume, redrive or replay: those answer null or "unavailable".
 */
export class ManagerDeliveryControl implements DeliveryControl {
  constructor(
    private readonly manager: DeliveryManager,
    private readonly dataDir: string,
    private readonly runs: FunctionRunLog,
  ) {}

  connections(): ConnectionView[] {
    return this.manager.status().map((s) => ({
      id: s.id,
      source: s.source,
      destination: { type: s.destination },
      state: "running",
      lag: { events: s.lagEvents, seconds: s.lagSeconds },
      lastSuccessAt: null,
      lastError: null,
      attempts: null,
      deadLetters: s.deadLetters,
      actions: { pause: false, resume: false, redrive: false, replay: false },
    }));
  }

  private async act(id: string): Promise<ControlOutcome> {
    return this.manager.consumers.some((c) => c.id === id)
      ? UNAVAILABLE
      : { ok: false, reason: "not_found" };
  }

  pause(id: string) {
    return this.act(id);
  }
  resume(id: string) {
    return this.act(id);
  }
  redrive(id: string) {
    return this.act(id);
  }
  replay(id: string) {
    return this.act(id);
  }

  eventPath(event: StoredEventRef): ConnectionPathView[] {
    const position = event.position as LogPosition;
    return this.manager.consumers
      .filter((c) => c.connection.source === event.sourceId)
      .map((c) => {
        const passed = comparePositions(c.offset(), position) > 0;
        const functions = this.runs.of(c.id, event.sourceId, event.messageId);
        const deadLetter = passed ? findDeadLetter(this.dataDir, c.id, event) : null;
        const dropped = functions.length > 0 && functions.at(-1)!.output === 0;
        return {
          connectionId: c.id,
          destination: { type: c.connection.destination.type },
          status: deadLetter
            ? "dead_letter"
            : !passed
              ? "pending"
              : dropped
                ? "dropped"
                : "delivered",
          functions,
          attempts: [],
          deadLetter,
          replays: [],
        };
      });
  }
}

/** The event's line in a connection's dead-letter file, if it has one. */
function findDeadLetter(
  dataDir: string,
  connectionId: string,
  event: StoredEventRef,
): ConnectionPathView["deadLetter"] {
  const path = deadLetterPath(dataDir, connectionId);
  if (!existsSync(path) || statSync(path).size > DEAD_LETTER_SCAN_BYTES) return null;
  const text = readFileSync(path, "utf8");
  const needle = JSON.stringify(event.messageId);
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + 1)) {
    const start = text.lastIndexOf("\n", at) + 1;
    const end = text.indexOf("\n", at);
    try {
      const line = JSON.parse(text.slice(start, end < 0 ? undefined : end)) as {
        at: string;
        reason: string;
        attempts: number;
        event: { sourceId?: string; messageId?: string };
      };
      if (line.event.messageId === event.messageId && line.event.sourceId === event.sourceId) {
        return { at: line.at, reason: line.reason, attempts: line.attempts };
      }
    } catch {}
  }
  return null;
}
