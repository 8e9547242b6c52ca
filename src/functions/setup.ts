import { availableParallelism } from "node:os";
import type { Logger } from "pino";
import type { SluiceConfig } from "../config/schema.ts";
import type { FunctionMetrics } from "../metrics/sluice.ts";
import { resolveHostIdentity } from "./host-process.ts";
import type { FunctionPoolOptions } from "./pool.ts";
import type { ConnectionSpec, FunctionSpec } from "./protocol.ts";
import type { FunctionStore } from "./store.ts";

/** How long a worker may take to import every function module before the one it is on is skipped. */
export const LOAD_TIMEOUT_MS = 10_000;

/** Whether any connection runs functions (else no function host is started at all). */
export function hasFunctions(config: SluiceConfig): boolean {
  return config.connections.some((c) => c.functions.length > 0);
}

/**
 * What the function host gets from the config: function files, and for each connection
 * with functions only what its ctx shows (options, env, source and destination
 * names). Write keys, hashes and the rest of the config never leave the server.
 */
export function functionPoolOptions(
  config: SluiceConfig,
  store: FunctionStore,
  logger: Logger,
  metrics?: FunctionMetrics,
): FunctionPoolOptions {
  const sources = new Map(config.sources.map((s) => [s.id, s]));
  const connections: ConnectionSpec[] = config.connections
    .filter((c) => c.functions.length > 0)
    .map((c) => ({
      id: c.id,
      functions: c.functions,
      options: c.options,
      env: c.env,
      source: { id: c.source, name: sources.get(c.source)?.name ?? c.source },
      destination: { id: c.id, type: c.destination.type },
    }));
  const functions: FunctionSpec[] = config.functions.map((f) => ({
    id: f.id,
    file: f.file,
    timeoutMs: f.timeoutMs,
  }));
  const runtime = config.functionRuntime;
  return {
    functions,
    connections,
    workers: runtime.workers ?? availableParallelism(),
    maxMemoryMb: runtime.maxMemoryMb,
    defaultTimeoutMs: runtime.timeoutMs,
    loadTimeoutMs: LOAD_TIMEOUT_MS,
    maxEvents: config.limits.maxBatchEvents,
    store,
    logger,
    metrics,
    identity: runtime.user === undefined ? undefined : resolveHostIdentity(runtime.user),
  };
}
