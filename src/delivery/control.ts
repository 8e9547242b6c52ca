import type {
  ConnectionPathView,
  ConnectionView,
  ControlOutcome,
  DeliveryControl,
  FunctionRunView,
  StoredEventRef,
} from "../admin/delivery/control.ts";
import type { DeadLetterStore } from "./dead-letters/interface.ts";
import { type DeliveryManager, UnknownConnectionError } from "./manager.ts";
import type { DeliveryTrace, TraceRecord } from "./trace/interface.ts";

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * The inspector's view of delivery (src/admin/delivery/control.ts) over the running
 * DeliveryManager: connection states, pause/resume/redrive, and each event's path from
 * the delivery trace and the dead letters.
 */
export class ManagerControl implements DeliveryControl {
  constructor(
    private readonly manager: DeliveryManager,
    private readonly trace: DeliveryTrace,
    private readonly deadLetters: DeadLetterStore,
    /**
     * Whether connection `id` started after the record at `ref` (never received it)
     * and, with a log shared by instances (NATS), whether it has committed it (its
     * consumer's ack floor), whoever delivered it: this instance's trace only holds
     * what this instance did.
     */
    private readonly committed?: (
      id: string,
      ref: string,
    ) => Promise<"committed" | "before_start" | "pending" | undefined>,
  ) {}

  connections(): ConnectionView[] {
    return this.manager.connectionStates().map((s) => ({
      id: s.id,
      source: s.source,
      destination: s.destination,
      state: s.state,
      lag: s.lag,
      lastSuccessAt: s.lastSuccessAt,
      lastError: s.lastError,
      attempts: s.attempts,
      deadLetters: s.deadLetters,
      actions: {
        pause: s.state !== "paused",
        resume: s.state === "paused",
        redrive: true,
        replay: true,
      },
    }));
  }

  pause(id: string): Promise<ControlOutcome> {
    return act(() => this.manager.pause(id));
  }

  resume(id: string): Promise<ControlOutcome> {
    return act(() => this.manager.resume(id));
  }

  redrive(id: string): Promise<ControlOutcome> {
    return act(async () => {
      const report = await this.manager.redrive(id, { all: true });
      return { ...report };
    });
  }

  replay(id: string, range: { from: Date; to?: Date }): Promise<ControlOutcome> {
    return act(() =>
      this.manager.replay(id, {
        from: { time: range.from.getTime() },
        to: range.to && { time: range.to.getTime() },
      }),
    );
  }

  async eventPath(event: StoredEventRef): Promise<ConnectionPathView[]> {
    const records = await this.trace.forEvent(event);
    const connections = this.manager.connectionsOf(event.sourceId);
    const paths = await Promise.all(
      connections.map((c) =>
        this.pathOn(
          c.id,
          c.destination.type,
          records.filter((r) => r.connectionId === c.id),
        ),
      ),
    );
    // Pending here, but past the connection's ack floor: another instance handled it;
    // older than the connection's consumer: it never received it.
    await Promise.all(
      paths.map(async (path) => {
        if (path.status !== "pending" || !this.committed) return;
        const state = await this.committed(path.connectionId, event.ref).catch(() => undefined);
        if (state === "committed") path.status = "acked";
        else if (state === "before_start") path.status = "before_start";
      }),
    );
    return paths;
  }

  private async pathOn(
    connectionId: string,
    destinationType: string,
    records: TraceRecord[],
  ): Promise<ConnectionPathView> {
    const functions: FunctionRunView[] = [];
    const attempts: ConnectionPathView["attempts"] = [];
    const replays: ConnectionPathView["replays"] = [];
    let deadLetter: ConnectionPathView["deadLetter"] = null;
    let status: ConnectionPathView["status"] = "pending";
    for (const { at, entry } of records) {
      switch (entry.kind) {
        case "functions": {
          functions.push({
            at: iso(at),
            retries: entry.retries,
            execLog: entry.execLog,
            logs: entry.logs.map((l) => ({
              level: l.level,
              functionId: l.functionId,
              message: l.message,
              args: l.args,
              timestamp: l.timestamp,
            })),
            output: entry.output,
          });
          const retry = entry.execLog.some((e) => e.error?.name === "RetryError");
          if (entry.output === 0 && !retry && status === "pending") status = "dropped";
          break;
        }
        case "attempt":
          attempts.push({
            at: iso(at),
            ok: entry.ok,
            ...(typeof entry.status === "number" ? { status: entry.status } : {}),
            ...(entry.error ? { error: entry.error } : {}),
            ...(entry.via ? { via: entry.via } : {}),
          });
          // A replay re-sends what was delivered before: it does not settle the path.
          if (entry.ok && entry.via !== "replay") status = "delivered";
          break;
        case "dead-letter": {
          const letter = await this.deadLetters.get(connectionId, entry.deadLetterId);
          // Once redriven the letter is gone: its attempts are the failed ones so far.
          const failed = attempts.filter((a) => !a.ok).length;
          deadLetter = { at: iso(at), reason: entry.error, attempts: letter?.attempts ?? failed };
          // Still there: not delivered (a redrive that delivered it removed it).
          if (letter) status = "dead_letter";
          break;
        }
        case "replay":
          replays.push({ at: iso(at), status: entry.ok ? "delivered" : `failed: ${entry.error}` });
          break;
      }
    }
    return {
      connectionId,
      destination: { type: destinationType },
      status,
      functions,
      attempts,
      deadLetter,
      replays,
    };
  }
}

/** Runs an action; an unknown connection is `not_found`. */
async function act(fn: () => Promise<unknown>): Promise<ControlOutcome> {
  try {
    const detail = await fn();
    return detail && typeof detail === "object"
      ? { ok: true, detail: detail as Record<string, unknown> }
      : { ok: true };
  } catch (err) {
    if (err instanceof UnknownConnectionError) {
      return { ok: false, reason: "not_found", message: err.message };
    }
    throw err;
  }
}
