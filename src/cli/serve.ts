import { existsSync } from "node:fs";
import { startSluice } from "../app.ts";
import { ConfigError, configPath, loadConfig } from "../config/load.ts";
import { drainLogger } from "../logger.ts";
import { createPrivately } from "../state/permissions.ts";
import { lowerBackgroundThreads } from "../thread-priority.ts";
import { createConfigFile, printNewKeys } from "./init.ts";

/**
 * `sluice serve`: starts the server and runs until SIGTERM/SIGINT. Without a config
 * file (and none named), writes a starter one first and prints its keys once.
 */
export async function serve(configFlag: string | undefined): Promise<number> {
  const { file, explicit } = configPath(configFlag);
  if (!existsSync(file)) {
    if (explicit) throw new ConfigError(file, [{ path: "", message: "file not found" }]);
    printNewKeys(file, createConfigFile(file));
  }
  // Everything the server creates from now on (log segments, state.db and its WAL,
  // dead letters) is private to its user: 0600 files, 0700 dirs.
  createPrivately();
  // Handlers go in before the server listens: a signal that arrives as soon as it
  // accepts requests must still stop it gracefully, not kill it.
  const started = startSluice(loadConfig(file));
  // The JIT's and the allocator's threads below the event loop (thread-priority.ts).
  const background = lowerBackgroundThreads();
  const shutdown = async (signal: string) => {
    background.stop();
    const sluice = await started;
    sluice.logger.info({ signal }, "shutting down");
    await sluice.stop();
    // The last lines ("sluice stopped") must reach stdout before the process ends.
    await drainLogger(sluice.logger);
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  // SIGHUP reloads the config; a bad file is refused (and logged) inside reload().
  process.on("SIGHUP", () => void started.then((sluice) => sluice.reload()));
  await started;
  // Runs until a signal arrives.
  return new Promise<number>(() => {});
}
