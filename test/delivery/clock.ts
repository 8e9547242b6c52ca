import type { Clock } from "../../src/delivery/clock.ts";

/**
 * Delivery's clock, running `factor` times faster than real time: every wait the
 * retry policy computes takes 1/factor of it, and `now()` moves accordingly, so the
 * policy's own arithmetic (its defaults included) runs unchanged in a short test.
 * `advance` jumps ahead at once (a day passes between two attempts).
 */
export class CompressedClock implements Clock {
  private readonly realStart = performance.now();
  private readonly start = Date.now();
  private skipped = 0;

  constructor(readonly factor: number) {}

  now(): number {
    return this.start + (performance.now() - this.realStart) * this.factor + this.skipped;
  }

  setTimer(fn: () => void, ms: number): () => void {
    const timer = setTimeout(fn, ms / this.factor);
    return () => clearTimeout(timer);
  }

  advance(ms: number): void {
    this.skipped += ms;
  }
}
