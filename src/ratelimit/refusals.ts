/**
 * Which rate-limit refusals get a log line: the first of each write key in every
 * interval, carrying how many refusals of that key went unlogged since its last line.
 * A client hammering past its limit is refused tens of thousands of times a second;
 * a line (and its "request failed" line) for each made a 429 cost more than a stored
 * event, when a 429 should cost almost nothing (issue 11). Metrics still count each.
 */
export class RefusalLog {
  private readonly keys = new Map<string, { loggedAt: number; unlogged: number }>();

  constructor(
    private readonly intervalMs = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * A refusal of `keyId`: the number of its refusals not logged since its last line
   * when this one is to be logged, or undefined when it is not.
   */
  refused(keyId: string): number | undefined {
    const now = this.now();
    const state = this.keys.get(keyId);
    if (state === undefined) {
      if (this.keys.size >= MAX_KEYS) this.keys.clear();
      this.keys.set(keyId, { loggedAt: now, unlogged: 0 });
      return 0;
    }
    if (now - state.loggedAt < this.intervalMs) {
      state.unlogged++;
      return undefined;
    }
    const unlogged = state.unlogged;
    state.loggedAt = now;
    state.unlogged = 0;
    return unlogged;
  }
}

/** Write keys are configured, so few; the bound only keeps a reload-heavy process small. */
const MAX_KEYS = 10_000;
