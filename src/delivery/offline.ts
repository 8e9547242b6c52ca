import type { Logger } from "pino";
import type { SluiceConfig } from "../config/schema.ts";
import { deliveryChain } from "../functions/delivery-chain.ts";
import { FunctionPool } from "../functions/pool.ts";
import { functionPoolOptions, sandboxOptions } from "../functions/setup.ts";
import { openCliState } from "../state/backend.ts";
import { openStateDb } from "../state/sqlite.ts";
import { systemClock } from "./clock.ts";
import type { DeadLetterStore } from "./dead-letters/interface.ts";
import { createDestination, type ServerSideDestination } from "./destinations/create.ts";
import { isServerSide, UnknownConnectionError } from "./manager.ts";
import { ConnectionPipeline } from "./pipeline.ts";
import { retryPolicy } from "./retry.ts";
import { SqliteDeliveryTrace } from "./trace/sqlite.ts";

/** One connection's pipeline, built outside the server (the CLI's redrive and replay). */
export interface OfflineConnection {
  pipeline: ConnectionPipeline;
  deadLetters: DeadLetterStore;
  close(): Promise<void>;
}

/** The server-side connection ids of a config. */
export function serverSideIds(config: SluiceConfig): string[] {
  return config.connections.filter(isServerSide).map((c) => c.id);
}

/**
 * Builds what the CLI needs to send a connection's events again: its destination, its
 * functions (in a function host of the CLI's own, as the server runs them), the dead
 * letters and the delivery trace. It works beside a running server or without one: it
 * never writes the event log nor a connection's offset, which only the server moves,
 * and what it does write (dead letters, the trace, the functions' store) is in SQLite,
 * which takes writers from several processes, or (dead letters and the functions'
 * store, with `state.backend: redis`) in the Redis the instances share.
 */
export async function openOfflineConnection(
  config: SluiceConfig,
  connectionId: string,
  logger: Logger,
  /** The config file (a function's folder copy for its sandbox must never include it). */
  configFile: string,
): Promise<OfflineConnection> {
  const connection = config.connections.find((c) => c.id === connectionId && isServerSide(c));
  if (!connection) throw new UnknownConnectionError(connectionId, serverSideIds(config));
  const dataDir = config.server.dataDir;
  const closers: (() => Promise<void> | void)[] = [];
  const close = async () => {
    for (const fn of closers.reverse()) await fn();
  };
  try {
    const db = openStateDb(dataDir);
    closers.push(() => db.close());
    // Dead letters and the functions' store where the server keeps them (state.backend).
    const state = await openCliState(config, {
      logger,
      db,
      withFunctionStore: connection.functions.length > 0,
    });
    closers.push(() => state.close());
    const { deadLetters } = state;
    const trace = new SqliteDeliveryTrace(db, { logger });
    closers.push(() => trace.close());
    let pool: FunctionPool | undefined;
    if (connection.functions.length > 0) {
      const store = state.functionStore!;
      const sandbox = sandboxOptions(config, configFile);
      pool = await FunctionPool.start(functionPoolOptions(config, config, store, logger, sandbox));
      closers.push(() => pool?.close());
    }
    const d = connection.destination as ServerSideDestination;
    const destination = createDestination(d);
    closers.push(() => destination.close());
    const pipeline = new ConnectionPipeline({
      connection,
      destination,
      chain: deliveryChain(pool, () => config.sources),
      deadLetters,
      trace,
      policy: retryPolicy(d),
      clock: systemClock,
      logger,
    });
    return { pipeline, deadLetters, close };
  } catch (err) {
    await close();
    throw err;
  }
}
