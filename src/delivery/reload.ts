import type { ConnectionConfig } from "../config/schema.ts";

/** What a config reload does to the connections. */
export interface ConnectionReloadPlan {
  /** The connections to run with from now on. */
  connections: ConnectionConfig[];
  /** What changed, for the reload's log line (names only, never a value: URLs and secrets stay out). */
  changes: string[];
  /** What waits for a restart. */
  restartNeeded: string[];
}

/**
 * Plans a reload of the connections (SIGHUP): added ones start, removed ones stop,
 * changed ones restart with their new destination. The function runtime loads its
 * connections' functions, options and env at start only, so a change to those (or a
 * new connection with functions) is kept for a restart, never run half-applied: an
 * event must not go out without the functions its connection says it passes through.
 */
export function planConnectionReload(
  running: ConnectionConfig[],
  next: ConnectionConfig[],
  /** The connections as the function runtime knows them. */
  functionsKnown: ConnectionConfig[],
): ConnectionReloadPlan {
  const before = new Map(running.map((c) => [c.id, c]));
  const known = new Map(functionsKnown.map((c) => [c.id, c]));
  const connections: ConnectionConfig[] = [];
  const changes: string[] = [];
  const restartNeeded: string[] = [];
  for (const c of next) {
    const prev = before.get(c.id);
    const runtime = known.get(c.id);
    if (c.functions.length > 0 && !(runtime && sameFunctions(runtime, c))) {
      restartNeeded.push(
        `connection ${c.id}: ${prev ? "functions, options or env" : "added with functions"}`,
      );
      if (prev) connections.push(prev);
      continue;
    }
    connections.push(c);
    if (!prev) changes.push(`connection ${c.id} added (${c.destination.type})`);
    else {
      const fields = changedFields(prev, c);
      if (fields.length > 0) changes.push(`connection ${c.id}: ${fields.join(", ")} changed`);
    }
  }
  const nextIds = new Set(next.map((c) => c.id));
  for (const c of running) if (!nextIds.has(c.id)) changes.push(`connection ${c.id} removed`);
  return { connections, changes, restartNeeded };
}

function sameFunctions(a: ConnectionConfig, b: ConnectionConfig): boolean {
  return (
    a.source === b.source &&
    Bun.deepEquals(a.functions, b.functions) &&
    Bun.deepEquals(a.options, b.options) &&
    Bun.deepEquals(a.env, b.env)
  );
}

/** Top-level fields, and the destination's own fields, that differ. */
function changedFields(a: ConnectionConfig, b: ConnectionConfig): string[] {
  const out: string[] = [];
  for (const key of ["source", "functions", "options", "env", "start"] as const) {
    if (!Bun.deepEquals(a[key], b[key])) out.push(key);
  }
  const da = a.destination as Record<string, unknown>;
  const db = b.destination as Record<string, unknown>;
  for (const key of new Set([...Object.keys(da), ...Object.keys(db)])) {
    if (!Bun.deepEquals(da[key], db[key])) out.push(`destination.${key}`);
  }
  return out;
}
