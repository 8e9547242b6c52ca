import { readFileSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on Linux). */
const TICKS_PER_SECOND = 100;
/** The window over which a host's CPU use is judged. */
const WINDOW_MS = 4000;
/** Idle (no call in flight all window long), a host may use at most this share of a core. */
const IDLE_SHARE = 0.3;

/** CPU seconds a process has used (user + system), from /proc; undefined where there is none. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // After the name: state is field 3, utime 14 and stime 15 (1-based), so 11 and 12 here.
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/**
 * Watches a host's CPU use, which user code can keep up outside any call (a timer, a
 * Worker or a native thread of its own making, which no function timeout sees): a
 * host that uses more than 0.3 of a core for 4 s with no call in flight, or more cores
 * than it has workers (+1) while busy, is using CPU for something else.
 */
export class CpuWatch {
  private samples: { at: number; cpu: number; busy: boolean }[] = [];

  constructor(private readonly workers: number) {}

  /** Records a sample; returns why the host must go, or undefined. */
  sample(pid: number, busy: boolean, now = Date.now()): string | undefined {
    const cpu = cpuSeconds(pid);
    if (cpu === undefined) return undefined;
    this.samples.push({ at: now, cpu, busy });
    while (this.samples.length > 2 && now - this.samples[1]!.at >= WINDOW_MS) this.samples.shift();
    const first = this.samples[0]!;
    const span = (now - first.at) / 1000;
    if (span * 1000 < WINDOW_MS) return undefined;
    const share = (cpu - first.cpu) / span;
    if (!this.samples.some((s) => s.busy) && share > IDLE_SHARE) {
      return `used ${share.toFixed(1)} cores for ${span.toFixed(1)} s with no call to run`;
    }
    if (share > this.workers + 1) {
      return `used ${share.toFixed(1)} cores with ${this.workers} worker(s)`;
    }
    return undefined;
  }

  /** A new host process: its history starts over. */
  reset(): void {
    this.samples = [];
  }
}
