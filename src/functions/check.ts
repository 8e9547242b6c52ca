import pino from "pino";
import type { SluiceConfig } from "../config/schema.ts";
import { FunctionPool } from "./pool.ts";
import type { LoadReport } from "./protocol.ts";
import { functionPoolOptions, sandboxOptions } from "./setup.ts";
import type { FunctionStore } from "./store.ts";

/** `sluice check` loads function files without the data dir (a running server may hold it). */
const noStore: FunctionStore = {
  get: () => Promise.reject(new Error("no store in check")),
  set: () => Promise.reject(new Error("no store in check")),
  del: () => Promise.reject(new Error("no store in check")),
  ttl: () => Promise.reject(new Error("no store in check")),
  close() {},
};

/**
 * Loads every configured function file the way the server does (in a sandboxed
 * function host, never in this process) and returns those that fail, each with its
 * file and error.
 */
export async function checkFunctions(
  config: SluiceConfig,
  configFile: string,
): Promise<LoadReport[]> {
  if (config.functions.length === 0) return [];
  const logger = pino({ level: "silent" });
  // One host with every function, as if one connection ran them all.
  const all: SluiceConfig = {
    ...config,
    connections: [
      {
        id: "check",
        source: "check",
        destination: { type: "device" },
        functions: config.functions.map((f) => f.id),
        options: {},
        env: {},
        start: "now",
      } as SluiceConfig["connections"][number],
    ],
  };
  const opts = functionPoolOptions(
    config,
    all,
    noStore,
    logger,
    sandboxOptions(config, configFile),
  );
  const pool = await FunctionPool.start({ ...opts, workers: 1 });
  try {
    if (pool.loadReports.length === 0) throw new Error("the function host did not start");
    return pool.loadReports.filter((r) => r.error);
  } finally {
    await pool.close();
  }
}
