import { fileURLToPath } from "node:url";

/**
 * Where the function runtime's entry points are, in development and in the binary of
 * package.json's `build` (`bun build --compile --entry-naming '[name].[ext]' src/main.ts
 * src/functions/worker.ts`): there the binary is /$bunfs/root/<name> (B:/~BUN/root on
 * Windows) with worker.js beside it, so `./worker.ts` next to this module resolves in both.
 */

/** The hidden CLI command that runs the function host (see main.ts and host.ts). */
export const HOST_COMMAND = "__function-host";

function compiled(): boolean {
  return (
    import.meta.path.startsWith("/$bunfs/") || /^[A-Za-z]:[\\/]~BUN[\\/]/.test(import.meta.path)
  );
}

/** `sluice __function-host`: through main.ts in development, the binary itself when compiled. */
export function hostCommand(): string[] {
  if (compiled()) return [process.execPath, HOST_COMMAND];
  return [process.execPath, fileURLToPath(new URL("../main.ts", import.meta.url)), HOST_COMMAND];
}

/** The worker entry (worker.ts), for `new Worker`. */
export function workerEntry(): string {
  return new URL("./worker.ts", import.meta.url).href;
}
