#!/usr/bin/env bun
import { existsSync } from "node:fs";
import { startSluice, VERSION } from "./app.ts";
import { type Args, flag, parseArgs } from "./cli/args.ts";
import { connectionsReport, formatConnections } from "./cli/connections.ts";
import { runHealth } from "./cli/health.ts";
import { HELP, helpText } from "./cli/help.ts";
import { runKeys } from "./cli/keys.ts";
import { tailLog, verifyLog } from "./cli/log.ts";
import { writeInitialConfig } from "./config/init.ts";
import { ConfigError, configPath, type LoadedConfig, loadConfig } from "./config/load.ts";
import { checkFunctions } from "./functions/check.ts";
import { HOST_COMMAND } from "./functions/entrypoints.ts";
import { drainLogger } from "./logger.ts";
import { DataDirLockedError } from "./state/lock.ts";

/** Exit codes: 0 ok, 1 runtime failure, 2 bad config or usage. */
async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const [command, sub] = args.positional;
  if (args.flags.version) {
    console.log(VERSION);
    return 0;
  }
  if (args.flags.help || command === "help" || command === undefined) {
    console.log(helpText(command === "help" ? args.positional.slice(1) : args.positional));
    return command === undefined && !args.flags.help ? 2 : 0;
  }
  switch (command) {
    case "serve":
      return serve(args);
    case "init":
      return init(args);
    case "check": {
      const loaded = load(args);
      const broken = await checkFunctions(loaded.config);
      for (const f of broken) {
        console.error(
          `function ${f.id} failed to load from ${f.file}: ${f.error!.name}: ${f.error!.message}`,
        );
      }
      if (broken.length > 0) return 2;
      console.log(
        `config ${loaded.file} is valid: ${loaded.config.sources.length} source(s), ` +
          `${loaded.config.connections.length} connection(s), ${loaded.config.functions.length} function(s)`,
      );
      for (const w of loaded.warnings) console.log(`warning: ${w}`);
      return 0;
    }
    case HOST_COMMAND: {
      // Hidden: the function host process the server starts (src/functions/host.ts).
      const { runFunctionHost } = await import("./functions/host.ts");
      runFunctionHost();
      return new Promise<number>(() => {});
    }
    case "connections": {
      const rows = connectionsReport(load(args).config);
      console.log(args.flags.json ? JSON.stringify(rows, null, 2) : formatConnections(rows));
      return 0;
    }
    case "keys":
      return runKeys(args);
    case "health":
      return runHealth(args);
    case "log":
      if (sub === "tail") return tail(args);
      if (sub === "verify") return verify(args);
      console.error("usage: sluice log tail|verify");
      return 2;
    default:
      console.error(`unknown command: ${command}\n\n${HELP}`);
      return 2;
  }
}

function load(args: Args): LoadedConfig {
  return loadConfig(configPath(flag(args, "config")).file);
}

function init(args: Args): number {
  const { file } = configPath(flag(args, "config"));
  if (existsSync(file)) {
    console.error(`${file} exists; not overwriting it`);
    return 1;
  }
  printNewKeys(file, writeInitialConfig(file));
  return 0;
}

function printNewKeys(file: string, keys: { browserKey: string; serverKey: string }) {
  console.log(`Created ${file} with one source and two write keys.
These keys are shown only now (the file keeps only their hashes):
  browser key: ${keys.browserKey}
  server key:  ${keys.serverKey}
`);
}

async function serve(args: Args): Promise<number> {
  const { file, explicit } = configPath(flag(args, "config"));
  if (!existsSync(file)) {
    if (explicit) throw new ConfigError(file, [{ path: "", message: "file not found" }]);
    printNewKeys(file, writeInitialConfig(file));
  }
  // Handlers go in before the server listens: a signal that arrives as soon as it
  // accepts requests must still stop it gracefully, not kill it.
  const started = startSluice(loadConfig(file));
  const shutdown = async (signal: string) => {
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

async function tail(args: Args): Promise<number> {
  const { config } = load(args);
  const controller = new AbortController();
  process.on("SIGINT", () => controller.abort());
  process.on("SIGTERM", () => controller.abort());
  await tailLog({
    dataDir: config.server.dataDir,
    fromStart: args.flags["from-start"] === true,
    follow: args.flags.follow === true || args.flags.f === true,
    source: flag(args, "source"),
    lines: count(flag(args, "n") ?? "10"),
    write: (line) => process.stdout.write(`${line}\n`),
    signal: controller.signal,
  });
  return 0;
}

function verify(args: Args): number {
  const { config } = load(args);
  const report = verifyLog(config.server.dataDir);
  for (const p of report.problems) {
    console.error(`segment ${p.segment} offset ${p.offset}: ${p.reason}`);
  }
  console.log(
    `${report.segments} segment(s), ${report.records} record(s), ${report.bytes} bytes: ` +
      (report.problems.length === 0 ? "ok" : `${report.problems.length} bad`),
  );
  return report.problems.length === 0 ? 0 : 1;
}

/** A non-negative whole number from the command line; a usage error otherwise. */
function count(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`expected a whole number, got ${value}`);
  return n;
}

class UsageError extends Error {}

main(process.argv.slice(2)).then(
  async (code) => {
    // Bun writes to a pipe asynchronously: exiting before stdout is flushed would cut
    // off the end of `log tail` output (beyond the pipe's 64 KB buffer).
    await new Promise<void>((resolve) => process.stdout.end(resolve));
    process.exit(code);
  },
  (err) => {
    if (err instanceof ConfigError || err instanceof UsageError) {
      console.error(err.message);
      process.exit(2);
    }
    if (err instanceof DataDirLockedError) {
      console.error(err.message);
      process.exit(1);
    }
    if ((err as { code?: string }).code === "EADDRINUSE") {
      console.error(
        `cannot listen: the port is in use by another process (${(err as Error).message})`,
      );
      process.exit(1);
    }
    console.error(err);
    process.exit(1);
  },
);
