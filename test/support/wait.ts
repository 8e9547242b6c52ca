/**
 * Waiting on conditions instead of fixed sleeps: a fixed sleep is flaky on a loaded
 * machine (too short) and slow on an idle one (too long); a poll with a deadline is
 * neither.
 */

/** What `waitFor` returns: the condition's value, known to be truthy. */
export type Truthy<T> = Exclude<T, false | 0 | "" | null | undefined>;

export interface WaitOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** Time between two checks (default 20 ms). */
  intervalMs?: number;
  /** What is waited for, for the error message (or a function that describes the state). */
  what?: string | (() => string);
}

/**
 * Polls `cond` until it returns a truthy value, and returns that value; throws after
 * `timeoutMs`, saying what it waited for. A `cond` that throws is retried until the
 * deadline, then its error is thrown.
 */
export async function waitFor<T>(
  cond: () => T | Promise<T>,
  opts: WaitOptions = {},
): Promise<Truthy<T>> {
  const { timeoutMs = 10_000, intervalMs = 20 } = opts;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await cond();
      if (value) return value as Truthy<T>;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      if (lastError) throw lastError;
      const what = typeof opts.what === "function" ? opts.what() : (opts.what ?? String(cond));
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await Bun.sleep(intervalMs);
  }
}
