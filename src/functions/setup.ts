import { existsSync, realpathSync } from "node:fs";
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import type { Logger } from "pino";
import type { SluiceConfig } from "../config/schema.ts";
import type { FunctionMetrics } from "../metrics/sluice.ts";
import { allowNetworksProblems } from "./fetch-policy.ts";
import type { FunctionPoolOptions } from "./pool.ts";
import type { ConnectionSpec, FunctionSpec } from "./protocol.ts";
import type { SandboxOptions } from "./sandbox/host-sandbox.ts";
import { chooseFunctionUser } from "./sandbox/identity.ts";
import { libc } from "./sandbox/libc.ts";
import type { FunctionStore } from "./store.ts";

/** How long a worker may take to import every function module before the one it is on is skipped. */
export const LOAD_TIMEOUT_MS = 10_000;

/** Whether any connection runs functions (else no function host is started at all). */
export function hasFunctions(config: SluiceConfig): boolean {
  return config.connections.some((c) => c.functions.length > 0);
}

/**
 * How function hosts are sandboxed on this machine: as whom they run (a dedicated
 * user when the server is root), and what they must never see (the config file and
 * the data dir, which no function folder copy may include). Throws on a
 * functionRuntime.user that does not exist or cannot be used.
 */
export function sandboxOptions(config: SluiceConfig, configFile: string): SandboxOptions {
  return sandboxFor(config.functionRuntime.user, [configFile, config.server.dataDir]);
}

/** The sandbox for hosts running as `user` (default: see chooseFunctionUser) that must never see `secret` paths. */
export function sandboxFor(user: string | undefined, secret: string[]): SandboxOptions {
  const choice = chooseFunctionUser(user);
  const real = (p: string) => (existsSync(p) ? realpathSync(p) : resolve(p));
  return {
    user: choice.user,
    info: choice.info,
    warnings: choice.warnings,
    exclude: secret.map(real),
    confine: libc() !== undefined,
  };
}

/**
 * What the function hosts get from the config: function files, and for each connection
 * with functions only what its ctx shows (options, env, source and destination
 * names). Write keys, hashes and the rest of the config never leave the server.
 * Throws on a malformed functionRuntime.allowNetworks entry.
 */
export function functionPoolOptions(
  config: SluiceConfig,
  connectionsFrom: SluiceConfig,
  store: FunctionStore,
  logger: Logger,
  sandbox: SandboxOptions,
  metrics?: FunctionMetrics,
): FunctionPoolOptions {
  const sources = new Map(connectionsFrom.sources.map((s) => [s.id, s]));
  const connections: ConnectionSpec[] = connectionsFrom.connections
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
  const problems = allowNetworksProblems(runtime.allowNetworks);
  if (problems.length > 0) throw new Error(problems.join("; "));
  return {
    functions,
    connections,
    workers: runtime.workers ?? availableParallelism(),
    maxMemoryMb: runtime.maxMemoryMb,
    defaultTimeoutMs: runtime.timeoutMs,
    loadTimeoutMs: LOAD_TIMEOUT_MS,
    maxEvents: config.limits.maxBatchEvents,
    allowNetworks: runtime.allowNetworks,
    store,
    logger,
    metrics,
    sandbox,
  };
}
