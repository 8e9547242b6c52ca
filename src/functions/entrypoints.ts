import { fileURLToPath } from "node:url";

/**
 * Where the function runtime's entry points are, in development and in the binary of
 * package.json's `build` (`bun build --compile --entry-naming '[name].[ext]' src/main.ts
 * src/functions/worker.ts`): there the binary is /$bunfs/root/<name> (B:/~BUN/root on
 * Windows) with worker.js beside it, so `./worker.ts` next to this module resolves in both.
 */

/** The hidden CLI command that runs the function host (see main.ts and host.ts). */
export const HOST_COMMAND = "__function-host";

/** Whether this is the `bun build --compile` binary (sources embedded, not on disk). */
export function isCompiled(): boolean {
  return (
    import.meta.path.startsWith("/$bunfs/") || /^[A-Za-z]:[\\/]~BUN[\\/]/.test(import.meta.path)
  );
}

/**
 * The function host's command line: the binary itself (`sluice __function-host`) when
 * compiled, else host-main.ts, which imports only the function runtime (the sandboxed
 * host may read src/ and nothing of node_modules).
 */
export function hostCommand(): string[] {
  if (isCompiled()) return [process.execPath, HOST_COMMAND];
  return [process.execPath, fileURLToPath(new URL("./host-main.ts", import.meta.url))];
}

/** The worker entry (worker.ts), for `new Worker`. */
export function workerEntry(): string {
  return new URL("./worker.ts", import.meta.url).href;
}
