/** A one-line progress bar for a terminal: `[████░░░░] 42%  4,200/10,000 events  1,234/s  ETA 5s`. */
export class ProgressBar {
  private lastDraw = 0;
  private drawn = false;
  private readonly started: number;

  constructor(
    private readonly write: (text: string) => void,
    private readonly now: () => number = Date.now,
    private readonly width = 24,
  ) {
    this.started = now();
  }

  /** Redraws at most ten times a second (and always for the last step). */
  update(done: number, total: number): void {
    const t = this.now();
    if (done < total && t - this.lastDraw < 100) return;
    this.lastDraw = t;
    this.drawn = true;
    this.write(`\r\x1b[2K${progressLine(done, total, t - this.started, this.width)}`);
  }

  /** Ends the bar's line (the summary goes below it). */
  finish(): void {
    if (this.drawn) this.write("\n");
    this.drawn = false;
  }
}

const count = (n: number) => Math.round(n).toLocaleString("en-US");

/** The bar's text for `done` of `total` after `elapsedMs`. */
export function progressLine(done: number, total: number, elapsedMs: number, width = 24): string {
  const share = total > 0 ? Math.min(1, done / total) : 1;
  const full = Math.round(share * width);
  const rate = elapsedMs > 0 ? (done / elapsedMs) * 1000 : 0;
  const eta = rate > 0 ? (total - done) / rate : Number.NaN;
  return (
    `[${"█".repeat(full)}${"░".repeat(width - full)}] ${Math.floor(share * 100)}%  ` +
    `${count(done)}/${count(total)} events  ${count(rate)}/s  ETA ${Number.isFinite(eta) ? seconds(eta) : "…"}`
  );
}

/** 5s, 2m05s, 1h02m. */
export function seconds(s: number): string {
  const whole = Math.ceil(s);
  if (whole < 60) return `${whole}s`;
  if (whole < 3600) return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, "0")}s`;
  return `${Math.floor(whole / 3600)}h${String(Math.floor((whole % 3600) / 60)).padStart(2, "0")}m`;
}
