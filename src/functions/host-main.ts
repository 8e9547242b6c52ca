/**
 * The function host's entry in development (`bun src/functions/host-main.ts`); the
 * compiled binary reaches the same code as `sluice __function-host`. It imports the
 * function runtime only, so the sandboxed host needs nothing outside src/.
 */
import { runFunctionHost } from "./host.ts";

runFunctionHost(process.argv.slice(2));
