/** The CLI: every command of `sluice` (src/main.ts loads this after its allocator check). */

import { ConfigError } from "../config/errors.ts";
import { DataDirLockedError } from "../state/lock.ts";
import { VERSION } from "../version.ts";
import { parseCommandLine } from "./args.ts";
import { CliError, UsageError } from "./command.ts";
import { COMMANDS } from "./commands.ts";

/** Exit codes: 0 ok, 1 runtime failure, 2 bad config or usage. */
async function main(argv: string[]): Promise<number> {
  const invocation = parseCommandLine(argv, COMMANDS);
  switch (invocation.kind) {
    case "version":
      console.log(VERSION);
      return 0;
    case "help":
      console.log(invocation.text);
      return 0;
    case "run":
      return invocation.command.run(invocation.values, invocation.operands);
  }
}

main(process.argv.slice(2)).then(
  async (code) => {
    // Bun writes to a pipe asynchronously: exiting before stdout is flushed would cut
    // off the end of `log tail` output (beyond the pipe's 64 KB buffer).
    await new Promise<void>((resolve) => process.stdout.end(resolve));
    process.exit(code);
  },
  (err) => {
    if (err instanceof UsageError) {
      console.error(`error: ${err.message}\n\n${err.usage}`);
      process.exit(2);
    }
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    if (err instanceof CliError) {
      console.error(err.message);
      process.exit(err.exitCode);
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
