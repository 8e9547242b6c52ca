import { join } from "node:path";

/** The inspector page's bundled script and stylesheet. */
export interface InspectorAssets {
  js: string;
  css: string;
}

/**
 * A Bun macro (imported `with { type: "macro" }`): runs build.ts when the importing
 * module is bundled or transpiled, and inlines its output. Bun.build cannot be called
 * from inside a macro (the bundler waits on the macro), hence the child process.
 */
export function bundleInspector(): InspectorAssets {
  const run = Bun.spawnSync([process.execPath, join(import.meta.dir, "build.ts")], {
    stderr: "pipe",
  });
  if (run.exitCode !== 0) {
    throw new Error(`bundling the inspector failed:\n${run.stderr.toString()}`);
  }
  return JSON.parse(run.stdout.toString()) as InspectorAssets;
}
