import type { ChainCall, FunctionRunner } from "../../functions/pool.ts";
import type { ChainResult } from "../../functions/protocol.ts";
import type { FunctionRunView } from "./control.ts";

/** Log lines kept per run: enough to see what a function said, bounded in memory. */
const LOG_LINES_KEPT = 50;

/**
 * The function runs of recent events on each connection, in memory (bounded: the
 * oldest events are forgotten first), so an event's path can show what its functions
 * did and logged. It wraps the runner delivery calls; `/api/funcs` runs are not
 * stored events and are not kept.
 */
export class FunctionRunLog {
  private readonly runs = new Map<string, FunctionRunView[]>();

  constructor(private readonly maxEvents = 5000) {}

  /** `runner` with every `run` (the delivery path) recorded. */
  wrap(runner: FunctionRunner): FunctionRunner {
    return {
      runJson: (call) => runner.runJson(call),
      run: async (call) => {
        const result = await runner.run(call);
        this.record(call, result);
        return result;
      },
    };
  }

  /** Runs of one event on one connection, oldest first. */
  of(connectionId: string, sourceId: string, messageId: string): FunctionRunView[] {
    return this.runs.get(runKey(connectionId, sourceId, messageId)) ?? [];
  }

  private record(call: ChainCall, result: ChainResult): void {
    const { sourceId, messageId } = call.event as { sourceId?: unknown; messageId?: unknown };
    if (typeof sourceId !== "string" || typeof messageId !== "string") return;
    const key = runKey(call.connectionId, sourceId, messageId);
    const list = this.runs.get(key) ?? [];
    this.runs.delete(key); // re-inserted last: the map's order is the eviction order
    list.push({
      at: new Date().toISOString(),
      retries: call.retries,
      execLog: result.execLog,
      logs: result.logs.slice(0, LOG_LINES_KEPT).map((l) => ({
        level: l.level,
        functionId: l.functionId,
        message: l.message,
        args: l.args,
        timestamp: l.timestamp,
      })),
      output: result.events.length,
    });
    this.runs.set(key, list.slice(-10));
    if (this.runs.size > this.maxEvents) {
      const oldest = this.runs.keys().next().value;
      if (oldest !== undefined) this.runs.delete(oldest);
    }
  }
}

function runKey(connectionId: string, sourceId: string, messageId: string): string {
  return `${connectionId}\u0000${sourceId}\u0000${messageId}`;
}
