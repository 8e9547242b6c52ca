import type { LogEntry, LogLevel } from "./protocol.ts";

/** A chain's log lines are capped: a function logging in a loop cannot grow the answer without bound. */
export const MAX_LOG_ENTRIES = 1000;

export type LogMethods = Record<LogLevel, (message?: unknown, ...args: unknown[]) => void>;

/** The log lines of one chain run, from ctx.log and console alike. */
export class LogCapture {
  readonly entries: LogEntry[] = [];
  private dropped = 0;

  add(level: LogLevel, functionId: string, values: unknown[]): void {
    if (this.entries.length >= MAX_LOG_ENTRIES) {
      this.dropped++;
      return;
    }
    const [first, ...rest] = values;
    this.entries.push({
      level,
      functionId,
      functionType: "udf",
      message: typeof first === "string" ? first : format(first),
      args: rest.map(jsonSafe),
      timestamp: new Date().toISOString(),
    });
  }

  /** ctx.log of function `functionId`. */
  methods(functionId: string): LogMethods {
    return {
      debug: (...v) => this.add("debug", functionId, v),
      info: (...v) => this.add("info", functionId, v),
      warn: (...v) => this.add("warn", functionId, v),
      error: (...v) => this.add("error", functionId, v),
    };
  }

  /** The entries, with a last line saying how many were left out past the cap. */
  finish(): LogEntry[] {
    if (this.dropped > 0) {
      const last = this.entries[this.entries.length - 1]!;
      this.entries.push({
        ...last,
        level: "warn",
        message: `${this.dropped} more log line(s) dropped`,
        args: [],
      });
    }
    return this.entries;
  }
}

const CONSOLE_LEVELS: Record<string, LogLevel> = {
  log: "info",
  info: "info",
  debug: "debug",
  trace: "debug",
  warn: "warn",
  error: "error",
};

/**
 * Routes `console.*` of user code to the running function's log (SPEC 7). Output
 * while no function runs (a timer a finished function left behind) is dropped.
 */
export function captureConsole(current: () => { capture: LogCapture; functionId: string } | null) {
  const target = globalThis.console as unknown as Record<string, unknown>;
  for (const [method, level] of Object.entries(CONSOLE_LEVELS)) {
    target[method] = (...values: unknown[]) => {
      const now = current();
      now?.capture.add(level, now.functionId, values);
    };
  }
}

/** A log argument as JSON can carry it: errors by name and message, cycles and functions named. */
export function jsonSafe(value: unknown): unknown {
  const seen = new WeakSet<object>();
  const walk = (v: unknown): unknown => {
    if (v === null || typeof v === "string" || typeof v === "boolean") return v;
    if (typeof v === "number") return Number.isFinite(v) ? v : String(v);
    if (typeof v === "bigint") return v.toString();
    if (typeof v === "undefined") return null;
    if (typeof v === "function") return `[Function ${v.name || "anonymous"}]`;
    if (typeof v === "symbol") return v.toString();
    if (v instanceof Error) return { name: v.name, message: v.message };
    if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
    const obj = v as object;
    if (seen.has(obj)) return "[Circular]";
    seen.add(obj);
    const out = Array.isArray(obj)
      ? obj.map(walk)
      : Object.fromEntries(Object.entries(obj).map(([k, x]) => [k, walk(x)]));
    seen.delete(obj);
    return out;
  };
  return walk(value);
}

function format(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  if (typeof value === "object" && value !== null) {
    try {
      return JSON.stringify(jsonSafe(value));
    } catch {
      return String(value);
    }
  }
  return String(value);
}
