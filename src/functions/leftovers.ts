/**
 * Timers user code leaves behind when its call ends (SPEC 7: leftovers end with the
 * call). Installed in the worker before any function module loads: from then on every
 * setTimeout, setInterval and setImmediate made after loading is recorded, and
 * `clear()` (at the end of each call) cancels those still pending. Timers a module
 * sets while loading are its own and stay. CPU a leftover keeps busy some other way
 * (a Worker or a thread of its own) is the host watchdog's business (cpu-watch.ts).
 */
export class TimerLeftovers {
  private readonly timeouts = new Set<unknown>();
  private readonly immediates = new Set<unknown>();
  private recording = false;

  constructor(scope: Record<string, unknown> = globalThis as unknown as Record<string, unknown>) {
    const g = scope as {
      setTimeout: (...a: unknown[]) => unknown;
      setInterval: (...a: unknown[]) => unknown;
      setImmediate: (...a: unknown[]) => unknown;
      clearTimeout: (h: unknown) => void;
      clearImmediate: (h: unknown) => void;
    };
    const realClearTimeout = g.clearTimeout;
    const realClearImmediate = g.clearImmediate;
    this.cancel = () => {
      for (const h of this.timeouts) realClearTimeout(h);
      for (const h of this.immediates) realClearImmediate(h);
      this.timeouts.clear();
      this.immediates.clear();
    };
    const isRecording = () => this.recording;
    const wrap = (name: "setTimeout" | "setInterval" | "setImmediate", into: Set<unknown>) => {
      const real = g[name];
      const wrapped = function (this: unknown, ...args: unknown[]) {
        const handle = real.apply(this, args);
        if (isRecording()) into.add(handle);
        return handle;
      };
      Object.assign(wrapped, real);
      g[name] = wrapped;
    };
    wrap("setTimeout", this.timeouts);
    wrap("setInterval", this.timeouts);
    wrap("setImmediate", this.immediates);
  }

  private readonly cancel: () => void;

  /** From now on timers are user code's leftovers-to-be (call after loading the modules). */
  start(): void {
    this.recording = true;
  }

  /** Cancels every recorded timer still pending (a call just ended). */
  clear(): void {
    this.cancel();
  }
}
