/**
 * Experiment only, not a way to run sluice: starts `sluice serve` with SO_REUSEPORT
 * forced on, so that two processes (each with its own data dir) share one port and the
 * kernel splits connections between them. See two-processes.ts.
 */
const serve = Bun.serve;
Object.defineProperty(Bun, "serve", {
  value: (options: { reusePort?: boolean }) =>
    serve({ ...options, reusePort: true } as Parameters<typeof serve>[0]),
});

await import("../../src/main.ts");

export {};
