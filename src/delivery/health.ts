/** A connection's state as SPEC 8 names it. */
export type ConnectionRunState = "running" | "retrying" | "paused" | "failing";

/**
 * How a connection's deliveries are going, kept across its consumer's restarts (a
 * pause, a config reload) for the state the metrics, admin API and inspector show.
 */
export class ConnectionHealth {
  lastSuccessAt: number | null = null;
  lastError: { at: number; message: string } | null = null;
  /** Failed attempts since the last success. */
  attempts = 0;
  /** The first failure since the last success: the retry window runs from here. */
  failingSince: number | null = null;
  /** `retrying`: waiting to try a batch again; `failing`: the last batch was dead-lettered. */
  phase: "ok" | "retrying" | "failing" = "ok";

  succeeded(at: number): void {
    this.lastSuccessAt = at;
    this.attempts = 0;
    this.failingSince = null;
    this.phase = "ok";
  }

  /** A transient failure: the batch will be tried again. Returns when the streak began. */
  retrying(at: number, message: string): number {
    this.lastError = { at, message };
    this.attempts++;
    this.failingSince ??= at;
    this.phase = "retrying";
    return this.failingSince;
  }

  /** A batch went to the dead letters (refused for good, or past the retry window). */
  deadLettered(at: number, message: string, transient: boolean): void {
    this.lastError = { at, message };
    this.attempts++;
    // Past the window the destination is still down: the streak goes on, so the next
    // batch is not given a fresh day. A refusal (a 400) says it is up: no streak.
    if (transient) this.failingSince ??= at;
    this.phase = "failing";
  }

  state(paused: boolean): ConnectionRunState {
    if (paused) return "paused";
    if (this.phase === "retrying") return "retrying";
    if (this.phase === "failing") return "failing";
    return "running";
  }
}
