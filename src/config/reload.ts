import type { Logger } from "pino";
import { planConnectionReload } from "../delivery/reload.ts";
import { ConfigError, loadConfig } from "./load.ts";
import type { ConnectionConfig, SluiceConfig, SourceConfig } from "./schema.ts";

/** What a reload did: applied (with the changes) or refused (with the problems). */
export type ReloadOutcome =
  | { applied: true; changes: string[]; restartNeeded: string[] }
  | { applied: false; problems: { path: string; message: string }[] };

export interface ReloadTarget {
  /** The config file to read again. */
  file: string;
  logger: Logger;
  /** The config the server runs with now. */
  current(): SluiceConfig;
  /** Makes `next` the running config (swaps the key ring and sources, restarts connections). */
  apply(next: SluiceConfig): void;
  /** The connections the function runtime runs functions for (default: the current ones). */
  functionConnections?: () => ConnectionConfig[];
  /**
   * Reloads the function runtime from the new file: every function's code is read
   * again, and `functions`, `functionRuntime` and the connections' functions, options
   * and env are applied (src/functions/pool.ts). Returns what changed, or undefined
   * when nothing was applied (no function runtime runs, or the new settings are bad):
   * then those changes wait for a restart.
   */
  reloadFunctions?(next: SluiceConfig): string[] | undefined;
  env?: NodeJS.ProcessEnv;
}

/**
 * Re-reads the config file (SIGHUP) and applies what can change while running:
 * sources (write keys, rate limits, allowed origins, names), `server.trustProxy`,
 * `server.publicUrl`, `logger`, `admin` (inspector tokens), connections
 * (src/delivery/reload.ts) and, with a function runtime running, functions (their code
 * is read again), `functionRuntime` and the connections' functions, options and env.
 * Listener, data dir, limits, dedup and log keep their running values until a
 * restart; a change to them is logged as such. A file that does not load or validate
 * is refused and the running config kept.
 */
export function reloadConfig(target: ReloadTarget): ReloadOutcome {
  const { logger, file } = target;
  let next: SluiceConfig;
  let warnings: string[];
  try {
    ({ config: next, warnings } = loadConfig(file, target.env));
  } catch (err) {
    // Any failure (invalid, unreadable, gone) leaves the running config in place.
    const problems =
      err instanceof ConfigError ? err.problems : [{ path: "", message: String(err) }];
    const detail = err instanceof ConfigError ? err.message : `${file}: ${String(err)}`;
    logger.error(
      { file, problems },
      `config reload refused, the running config is kept: ${detail}`,
    );
    return { applied: false, problems };
  }
  const current = target.current();
  const functionChanges = target.reloadFunctions?.(next);
  const connections = planConnectionReload(
    current.connections,
    next.connections,
    // A reloaded function runtime runs the new connections' functions already.
    functionChanges ? next.connections : (target.functionConnections?.() ?? current.connections),
  );
  const applied: SluiceConfig = {
    ...current,
    server: {
      ...current.server,
      trustProxy: next.server.trustProxy,
      publicUrl: next.server.publicUrl,
    },
    logger: next.logger,
    sources: next.sources,
    admin: { ...current.admin, tokens: next.admin.tokens },
    connections: connections.connections,
    ...(functionChanges
      ? { functions: next.functions, functionRuntime: next.functionRuntime }
      : {}),
  };
  const changes = [
    ...describeChanges(current, applied),
    ...connections.changes,
    ...(functionChanges ?? []),
  ];
  const restartNeeded = [...restartOnlyChanges(current, next), ...connections.restartNeeded].filter(
    (section) => !(functionChanges && section === "functions"),
  );
  target.apply(applied);
  logger.level = applied.logger.level;
  for (const w of warnings) logger.warn(w);
  logger.info(
    { file, changes, restartNeeded },
    changes.length === 0 ? "config reloaded: nothing to apply" : "config reloaded",
  );
  if (restartNeeded.length > 0) {
    logger.warn(
      { restartNeeded },
      `config changes that take effect only after a restart: ${restartNeeded.join(", ")}`,
    );
  }
  return { applied: true, changes, restartNeeded };
}

/** Human-readable changes between two configs' live parts (sources, trustProxy, logger). */
export function describeChanges(before: SluiceConfig, after: SluiceConfig): string[] {
  const out: string[] = [];
  const old = new Map(before.sources.map((s) => [s.id, s]));
  const now = new Map(after.sources.map((s) => [s.id, s]));
  for (const [id, s] of now) {
    const prev = old.get(id);
    if (!prev) out.push(`source ${id} added with ${s.writeKeys.length} key(s)`);
    else out.push(...sourceChanges(prev, s));
  }
  for (const id of old.keys()) if (!now.has(id)) out.push(`source ${id} removed`);
  if (before.server.trustProxy !== after.server.trustProxy) {
    out.push(`server.trustProxy: ${before.server.trustProxy} -> ${after.server.trustProxy}`);
  }
  if (before.server.publicUrl !== after.server.publicUrl) {
    out.push(
      `server.publicUrl: ${before.server.publicUrl ?? "none"} -> ${after.server.publicUrl ?? "none"}`,
    );
  }
  const tokenIds = (c: SluiceConfig) => c.admin.tokens.map((t) => `${t.id}=${t.hash}`).join();
  if (tokenIds(before) !== tokenIds(after)) {
    out.push(`admin tokens: ${after.admin.tokens.map((t) => t.id).join(", ") || "none"}`);
  }
  if (before.logger.level !== after.logger.level) {
    out.push(`logger.level: ${before.logger.level} -> ${after.logger.level}`);
  }
  if (before.logger.successSampleRate !== after.logger.successSampleRate) {
    out.push(
      `logger.successSampleRate: ${before.logger.successSampleRate} -> ${after.logger.successSampleRate}`,
    );
  }
  return out;
}

function sourceChanges(a: SourceConfig, b: SourceConfig): string[] {
  const out: string[] = [];
  const at = `source ${b.id}`;
  const oldKeys = new Map(a.writeKeys.map((k) => [k.id, k]));
  const newKeys = new Map(b.writeKeys.map((k) => [k.id, k]));
  for (const [id, k] of newKeys) {
    const prev = oldKeys.get(id);
    if (!prev) out.push(`${at}: key ${id} added (${k.type})`);
    else if (prev.type !== k.type) out.push(`${at}: key ${id} type ${prev.type} -> ${k.type}`);
    else if (prev.hash !== k.hash || prev.key !== k.key) out.push(`${at}: key ${id} replaced`);
  }
  for (const id of oldKeys.keys()) if (!newKeys.has(id)) out.push(`${at}: key ${id} removed`);
  const ra = a.rateLimit;
  const rb = b.rateLimit;
  if (ra.eventsPerSecond !== rb.eventsPerSecond || ra.burst !== rb.burst) {
    out.push(
      `${at}: rate limit ${ra.eventsPerSecond}/s burst ${ra.burst} -> ${rb.eventsPerSecond}/s burst ${rb.burst}`,
    );
  }
  if (!Bun.deepEquals(a.allowedOrigins, b.allowedOrigins))
    out.push(`${at}: allowedOrigins changed`);
  if (a.name !== b.name) out.push(`${at}: name changed`);
  return out;
}

/** Sections that differ but are applied only by a restart. */
function restartOnlyChanges(running: SluiceConfig, next: SluiceConfig): string[] {
  const out: string[] = [];
  for (const field of ["port", "host", "dataDir"] as const) {
    if (running.server[field] !== next.server[field]) out.push(`server.${field}`);
  }
  for (const section of ["limits", "dedup", "log", "state", "functions"] as const) {
    if (!Bun.deepEquals(running[section], next[section])) out.push(section);
  }
  if (running.admin.searchIndex !== next.admin.searchIndex) out.push("admin.searchIndex");
  return out;
}
