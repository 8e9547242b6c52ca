/**
 * When a small group commit waits for more appends before its write.
 *
 * Each group commit costs ~120 µs of CPU whatever its size (an O_DSYNC write:
 * bench/RESULTS.md, "One group commit costs ~120 µs of CPU"), so at moderate rates, where
 * a fast disk leaves groups of 1–3 appends, the writes alone take much of the core and
 * requests queue behind them. So a group of fewer than GROUP_FULL appends waits for more,
 * up to LINGER_MS after its first append, if appends come faster than that (moving
 * average of their gaps). A lone request is written at once (one gap of GAP_MAX_MS, a
 * pause, lifts the average past LINGER_MS), and at full speed groups are full without
 * waiting. The acknowledgement still waits for the write (durable before the answer).
 *
 * The wait ends at the group's GROUP_FULL-th append or at the first append past the
 * deadline (a hit). Bun's timers fire in whole milliseconds, so when no append comes a
 * timer ends it about a millisecond after the wait began (a miss: the clients of these
 * appends may each wait for their answer before sending more, and nothing else comes).
 * When more than MISSES_MAX of recent waits missed, lingering is off for LINGER_OFF_MS,
 * doubling while the first wait after each pause misses too, up to LINGER_OFF_MAX_MS.
 */
const GROUP_FULL = 8;
const LINGER_MS = 0.5;
/** Lingering stops when more than this share of recent waits ended by their timer. */
const MISSES_MAX = 0.25;
const LINGER_OFF_MS = 10;
const LINGER_OFF_MAX_MS = 1000;
/** A gap between appends counts as at most this much (an idle second is not 1000 gaps). */
const GAP_MAX_MS = 10;

export class GroupLinger {
  /** Time between appends, ms, moving average (each gap counted up to GAP_MAX_MS). */
  private gap = GAP_MAX_MS;
  private lastAppendAt = Number.NEGATIVE_INFINITY;
  /** While a group waits: its deadline, and what ends the wait. */
  private waiting: { until: number; end: () => void } | null = null;
  /** The share of recent waits that ended by their timer (moving average). */
  private misses = 0;
  /** Waits are off until then (performance.now()): too many recent ones missed. */
  private offUntil = 0;
  private offMs = LINGER_OFF_MS;

  /** `now`: the clock of the appends' times (performance.now(); a test's own clock). */
  constructor(private readonly now: () => number = () => performance.now()) {}

  /** An append arrived at `at` (performance.now()); `pending` appends wait now. */
  appended(at: number, pending: number): void {
    this.gap += (Math.min(at - this.lastAppendAt, GAP_MAX_MS) - this.gap) / 8;
    this.lastAppendAt = at;
    const w = this.waiting;
    if (w && (pending >= GROUP_FULL || at >= w.until)) this.ended(true);
  }

  /**
   * A wait before writing the `pending` appends, the first appended at `firstAt`, or
   * undefined to write them now.
   */
  wait(firstAt: number, pending: number): Promise<void> | undefined {
    if (pending >= GROUP_FULL) return;
    const now = this.now();
    if (now < this.offUntil) return;
    const until = firstAt + LINGER_MS;
    // Only if the next append is due before the deadline.
    if (until - now < this.gap) return;
    return new Promise((resolve) => {
      // Bun's timers fire in whole milliseconds: this one about 1.1 ms after now.
      const timer = setTimeout(() => this.ended(false), 1);
      this.waiting = {
        until,
        end: () => {
          clearTimeout(timer);
          this.waiting = null;
          resolve();
        },
      };
    });
  }

  /** Ends a wait now (the log closes). */
  stop(): void {
    this.waiting?.end();
  }

  private ended(hit: boolean): void {
    if (hit) {
      this.misses -= this.misses / 8;
      if (this.misses <= MISSES_MAX) this.offMs = LINGER_OFF_MS;
    } else {
      this.misses += (1 - this.misses) / 8;
      if (this.misses > MISSES_MAX) {
        this.offUntil = this.now() + this.offMs;
        this.offMs = Math.min(this.offMs * 2, LINGER_OFF_MAX_MS);
        this.misses = MISSES_MAX; // the first wait after the pause decides
      }
    }
    this.waiting?.end();
  }
}
