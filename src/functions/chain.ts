import { isJsonObject } from "../events/json.ts";
import type { FunctionContext } from "./ctx.ts";
import { type ErrorInfo, type ExecLogEntry, errorInfo } from "./protocol.ts";

/** A function module's default export. */
export type UserFunction = (event: Record<string, unknown>, ctx: FunctionContext) => unknown;

/** A function as the worker loaded it: callable, or the reason it is not. */
export interface LoadedFunction {
  id: string;
  timeoutMs: number;
  run?: UserFunction;
  error?: ErrorInfo;
}

export interface ChainOutput {
  events: Record<string, unknown>[];
  execLog: ExecLogEntry[];
}

type Event = Record<string, unknown>;

/**
 * Runs `steps` over one event under SPEC 7's contract. Each function gets its own copy
 * of the event, so a function that throws after mutating it leaves no trace: the chain
 * goes on with the event as it was before that function. Return values: undefined →
 * the (mutated) copy goes on; "drop", null, false or [] → dropped, the chain stops;
 * an object → replaces the event; an array → several events, from the last function
 * only (earlier, it is an error in the exec log and the event goes on unchanged), at
 * most `maxEvents` of them. Whatever user code throws or returns (a Proxy whose traps
 * throw included) ends as an exec-log entry: this never rejects.
 */
export async function runChain(
  steps: LoadedFunction[],
  event: Event,
  ctxFor: (fn: LoadedFunction) => FunctionContext,
  onStep: (index: number, fn: LoadedFunction) => void = () => {},
  maxEvents = Number.POSITIVE_INFINITY,
): Promise<ChainOutput> {
  const execLog: ExecLogEntry[] = [];
  let current = event;
  for (let i = 0; i < steps.length; i++) {
    const fn = steps[i]!;
    const entry: ExecLogEntry = { eventIndex: 0, functionId: fn.id, ms: 0 };
    execLog.push(entry);
    if (!fn.run) {
      entry.error = fn.error ?? { name: "Error", message: "function not loaded" };
      continue;
    }
    let input: Event;
    try {
      input = copyEvent(current);
    } catch (err) {
      // An earlier function left something JSON cannot carry (a BigInt, a cycle).
      entry.error = { name: "TypeError", message: `event is not JSON: ${errorInfo(err).message}` };
      continue;
    }
    onStep(i, fn);
    const started = performance.now();
    let result: unknown;
    try {
      result = await fn.run(input, ctxFor(fn));
    } catch (err) {
      entry.ms = elapsed(started);
      entry.error = errorInfo(err);
      continue;
    }
    entry.ms = elapsed(started);
    let outcome: Outcome;
    try {
      outcome = classify(result, input, i === steps.length - 1, maxEvents);
    } catch (err) {
      // Reading the result ran user code (a Proxy's traps, getters) that threw.
      outcome = {
        error: { name: "TypeError", message: `unreadable return value: ${errorInfo(err).message}` },
      };
    }
    if ("error" in outcome) {
      entry.error = outcome.error;
    } else if (outcome.events.length === 0) {
      entry.dropped = true;
      return { events: [], execLog };
    } else if (outcome.split) {
      return { events: outcome.events, execLog };
    } else {
      current = outcome.events[0]!;
    }
  }
  return { events: [current], execLog };
}

type Outcome = { events: Event[]; split?: true } | { error: ErrorInfo };

/** What a function's return value means for the chain (may run user code: it can throw). */
function classify(result: unknown, input: Event, last: boolean, maxEvents: number): Outcome {
  if (isDrop(result)) return { events: [] };
  if (result === undefined) return { events: [input] };
  if (Array.isArray(result)) {
    if (!last) {
      return {
        error: {
          name: "Error",
          message: "only the last function of a chain may return several events",
        },
      };
    }
    if (result.length > maxEvents) {
      return {
        error: {
          name: "RangeError",
          message: `returned ${result.length} events; a function may return at most ${maxEvents} (limits.maxBatchEvents)`,
        },
      };
    }
    if (!result.every(isJsonObject)) {
      return { error: { name: "TypeError", message: "returned array must hold event objects" } };
    }
    return { events: result, split: true };
  }
  if (isJsonObject(result)) return { events: [result] };
  return {
    error: {
      name: "TypeError",
      message: `unsupported return value (${typeof result}): return nothing, an event, an array of events or "drop"`,
    },
  };
}

function isDrop(result: unknown): boolean {
  return (
    result === "drop" ||
    result === null ||
    result === false ||
    (Array.isArray(result) && result.length === 0)
  );
}

/**
 * A deep copy, the JSON way: events come from JSON and leave as JSON, and it is several
 * times faster than Bun's structuredClone.
 */
function copyEvent(event: Event): Event {
  return JSON.parse(JSON.stringify(event));
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 1000) / 1000;
}
