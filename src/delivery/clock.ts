/**
 * Time as delivery sees it: the retry window, backoff waits and "last success" all read
 * it. The server runs on the system clock; a test of the defaults runs the same code on
 * a compressed clock (test/delivery/clock.ts) instead of waiting hours.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `fn` after `ms`; returns a function that cancels it. */
  setTimer(fn: () => void, ms: number): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const timer = setTimeout(fn, ms);
    return () => clearTimeout(timer);
  },
};
