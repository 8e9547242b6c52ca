/**
 * What makes the p99 of single events at the "half max" row (issue 11, "the tail at half
 * rate"): runs `sluice serve` under tail-probe.ts (pinned to CPU 1, as run.ts), warms it
 * up with wrk for 3 s, then paces single events with tail-client.ts (CPU 0), which keeps
 * every answer's time, while this process samples the server's threads' CPU
 * (/proc/<pid>/task/<tid>/schedstat, every --sample ms) and CPU 1's busy time. Each
 * answer slower than --slow ms is then put down to what covers most of its time:
 *
 *   gc: <kind>     a collection of the event loop's heap over the answer's longest
 *                  loop stall (with --gclog: JSC's GC log, its lines timed as they come)
 *   loop: <label>  a server event-loop stall overlapping the answer, busy (its thread on
 *                  the CPU), labelled with the timer callback, worker message or Bun.gc
 *                  inside it, or "gc" if the JS heap fell across it, else "busy"
 *   loop off-CPU   a stall while the event loop's thread was off the CPU, named for
 *                  the thread (or other processes on CPU 1) that ran most meanwhile
 *   group commit   the group commit writes during the answer (and whether zeros were
 *   write          being written ahead meanwhile)
 *   client stall   the client's own event loop was late over the answer's span
 *   none           nothing recorded
 *
 *   taskset -c 0 bun bench/experiments/tail-trace.ts [--duration S] [--rounds N]
 *       [--connections N] [--pause MS] [--slow MS] [--sample MS] [--gclog] [--data FILLED_DIR] [--entry OTHER/src/main.ts | --renice NAMES:N]
 *
 * With `--entry`, rounds alternate between that tree and this one.
 */
import { resolve } from "node:path";
import { type GcCycle, type Probe, pct, runTailRounds } from "../lib/tail-rounds.ts";

const argv = process.argv.slice(2);
const opt = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const seconds = Number(opt("duration") ?? 10);
const rounds = Number(opt("rounds") ?? 1);
const connections = Number(opt("connections") ?? 55);
const pauseMs = Number(opt("pause") ?? 10);
const slowMs = Number(opt("slow") ?? 5);
const sampleMs = Number(opt("sample") ?? 5);
/** Run the server with JSC's GC log (BUN_JSC_logGC=1), its lines timed as they come. */
const gcLog = argv.includes("--gclog");
const other = opt("entry") ? resolve(opt("entry")!) : undefined;
/**
 * `--renice NAMES:N`: after the warm-up, sets nice N on the server's threads named in
 * NAMES (comma-separated; "Worker" means the workers not in the idle class); rounds then
 * alternate between without and with (an A/B of thread priorities on one tree).
 */
const renice = opt("renice");
/** `--data DIR`: each server starts on a copy of DIR's dedup.db and dedup-filter/ (a filled window, bench/capacity.ts --fill-only). */
const filled = opt("data") ? resolve(opt("data")!) : undefined;
/** Writes this large are the zeros written ahead (file-log.ts: ZERO_CHUNK), not group commits. */
const ZERO_BYTES = 256 * 1024;

await runTailRounds(
  { seconds, rounds, connections, pauseMs, sampleMs, gcLog, other, renice, filled },
  report,
);

function report(
  name: string,
  load: string,
  client: { sent: number[]; latency: number[]; bad: number; stalls: [number, number][] },
  probe: Probe,
  samples: { at: number; threads: Map<string, number>; cpu1: number }[],
  cycles: GcCycle[],
): void {
  const n = client.latency.length;
  const span = (client.sent.at(-1)! - client.sent[0]!) / 1000;
  const sorted = [...client.latency].sort((a, b) => a - b);
  const first = client.sent[0]!;
  const last = client.sent.at(-1)!;
  const inRun = <T extends unknown[]>(rows: T[], at: (r: T) => number) =>
    rows.filter((r) => at(r) >= first && at(r) <= last + 100);
  const stalls = inRun(probe.stalls, (s) => s[0]);
  const busy = [...probe.timers, ...probe.messages, ...probe.gcs];
  const writes = inRun(probe.writes, (w) => w[0]);
  const causes = new Map<string, number>();
  const offCpu = new Map<string, number>();
  const overlaps = (a0: number, a1: number, b0: number, b1: number) => a0 < b1 && b0 < a1;
  let slow = 0;
  for (let i = 0; i < n; i++) {
    const lat = client.latency[i]!;
    if (lat <= slowMs) continue;
    slow++;
    const t0 = client.sent[i]!;
    const t1 = t0 + lat;
    // What explains most of the answer's time: the longest server stall over it, the
    // group commit writes during it (one flush at a time: they add up), or a client stall.
    let worst: (typeof stalls)[number] | undefined;
    for (const s of stalls) {
      if (overlaps(t0, t1, s[0] - s[1], s[0]) && (!worst || s[1] > worst[1])) worst = s;
    }
    const clip = (a0: number, a1: number) => Math.max(0, Math.min(t1, a1) - Math.max(t0, a0));
    // The loop's stalls over the answer, all of them (they are consecutive, never overlap).
    let stallMs = 0;
    for (const st of stalls) stallMs += clip(st[0] - st[1], st[0]);
    let commitMs = 0;
    let zerosDuring = false;
    for (const w of writes) {
      if (w[2] >= ZERO_BYTES) continue;
      const c = clip(w[0], w[0] + w[1]);
      if (c > 0) {
        commitMs += c;
        if (
          writes.some((z) => z[2] >= ZERO_BYTES && overlaps(w[0], w[0] + w[1], z[0], z[0] + z[1]))
        )
          zerosDuring = true;
      }
    }
    const clientMs = Math.max(
      0,
      ...client.stalls.map(([end, gap]) => (gap > 2 ? clip(end - gap, end) : 0)),
    );
    let cause = "none";
    const mainGc = cycles.find(
      (c) =>
        c.heap === 0 &&
        (worst
          ? overlaps(worst[0] - worst[1], worst[0], c.start, c.end)
          : overlaps(t0, t1, c.start, c.end)),
    );
    // A write's end is seen on the event loop: a stall over it is counted there, not here.
    commitMs = Math.max(0, commitMs - stallMs);
    if (worst && mainGc && stallMs >= commitMs && stallMs >= clientMs) {
      cause = `gc: ${mainGc.kind} (in a loop stall)`;
    } else if (worst && stallMs >= commitMs && stallMs >= clientMs) {
      const [end, gap, cpu, heapMb] = worst;
      if (cpu / gap > 0.5) {
        const inside = busy.find((b) => overlaps(end - gap, end, b[0], b[0] + b[1]));
        cause = `loop: ${inside ? inside[2].slice(0, 60) : heapMb < -1 ? "gc (heap fell)" : "busy"}`;
      } else {
        const before = samples.findLast((s) => s.at <= end - gap);
        const after = samples.find((s) => s.at >= end);
        let top = "?";
        if (before && after) {
          const ran = new Map<string, number>();
          let own = 0;
          for (const [k, v] of after.threads) {
            const d = (v - (before.threads.get(k) ?? v)) / 1e6;
            own += d;
            if (d > 0) {
              const key = k.replace(/#\d+$/, "").replace(/\d+$/, "N");
              ran.set(key, (ran.get(key) ?? 0) + d);
            }
          }
          const delay = ran.get("loop delay") ?? 0;
          own -= delay;
          ran.delete("loop delay");
          ran.set("other processes", Math.max(0, after.cpu1 - before.cpu1 - own));
          ran.delete("event loop");
          // Not runnable for most of it: blocked (a lock, a system call), not preempted.
          if (delay < 0.5 * gap) ran.set("(loop blocked, not runnable)", 1e9);
          for (const [k, v] of ran) if (v < 1e9) offCpu.set(k, (offCpu.get(k) ?? 0) + v);
          top = [...ran].sort((a, b) => b[1] - a[1])[0]?.[0] ?? "?";
        }
        cause = `loop off-CPU, most to ${top}`;
      }
    } else if (commitMs > 0 && commitMs >= clientMs) {
      cause = zerosDuring ? "group commit write (zeros in flight)" : "group commit write";
    } else if (clientMs > 0) {
      cause = "client stall";
    }
    causes.set(cause, (causes.get(cause) ?? 0) + 1);
  }
  const commitMs = writes
    .filter((w) => w[2] < ZERO_BYTES)
    .map((w) => w[1])
    .sort((a, b) => a - b);
  const zeroWrites = writes.filter((w) => w[2] >= ZERO_BYTES);
  const busyStalls = stalls.filter((s) => s[2] / s[1] > 0.5);
  console.log(
    `${name}: load ${load}, ${Math.round(n / span)} req/s, p50/p99/p99.9 ` +
      `${pct(sorted, 50).toFixed(2)}/${pct(sorted, 99).toFixed(2)}/${pct(sorted, 99.9).toFixed(1)} ms, ` +
      `>${slowMs} ms: ${slow} (${((100 * slow) / n).toFixed(2)}%), not 200: ${client.bad}`,
  );
  console.log(
    `  server loop stalls >2 ms: ${stalls.length} (busy ${busyStalls.length}, ` +
      `>5 ms ${stalls.filter((s) => s[1] > 5).length}, max ${Math.max(0, ...stalls.map((s) => s[1])).toFixed(1)} ms); ` +
      `client stalls >2 ms: ${client.stalls.filter((s) => s[1] > 2).length}; group commits ${commitMs.length}, ` +
      `p50/p99/max ${pct(commitMs, 50).toFixed(2)}/${pct(commitMs, 99).toFixed(2)}/${commitMs.at(-1)?.toFixed(1)} ms, ` +
      `>3 ms ${commitMs.filter((w) => w > 3).length}; zero chunks ${zeroWrites.length} (mean ` +
      `${(zeroWrites.reduce((t, w) => t + w[1], 0) / Math.max(1, zeroWrites.length)).toFixed(1)} ms)`,
  );
  const slowTimers = new Map<string, { n: number; ms: number; max: number; cpu: number }>();
  for (const t of [...probe.timers, ...probe.messages, ...probe.gcs]) {
    if (t[0] < first || t[0] > last) continue;
    const e = slowTimers.get(t[2]) ?? { n: 0, ms: 0, max: 0, cpu: 0 };
    e.n++;
    e.ms += t[1];
    e.cpu += t[3];
    e.max = Math.max(e.max, t[1]);
    slowTimers.set(t[2], e);
  }
  for (const [k, e] of [...slowTimers].sort((a, b) => b[1].ms - a[1].ms).slice(0, 8)) {
    console.log(
      `  callback >0.5 ms: ${e.n}× mean ${(e.ms / e.n).toFixed(2)} max ${e.max.toFixed(1)} ms, CPU ${((100 * e.cpu) / e.ms).toFixed(0)}%  ${k.slice(0, 90)}`,
    );
  }
  if (probe.heap) {
    const h = probe.heap;
    console.log(
      `  event loop heap at exit: ${(h.heapSize / 2 ** 20).toFixed(1)} MB, ${h.objectCount} objects, extra ` +
        `${(h.extra / 2 ** 20).toFixed(1)} MB, a Bun.gc(true) on it ${h.fullGcMs.toFixed(1)} ms; most: ${h.types
          .slice(0, 12)
          .map(([k, v]) => `${k} ${v}`)
          .join(", ")}`,
    );
  }
  if (cycles.length > 0) {
    const inRunCycles = cycles.filter((c) => c.start >= first && c.start <= last);
    for (const heap of new Set(inRunCycles.map((c) => c.heap))) {
      for (const kind of new Set(inRunCycles.map((c) => c.kind))) {
        const cs = inRunCycles.filter((c) => c.heap === heap && c.kind === kind);
        if (cs.length === 0) continue;
        const mean = (f: (c: GcCycle) => number) => cs.reduce((t, c) => t + f(c), 0) / cs.length;
        console.log(
          `  gc heap ${heap} ${kind}: ${cs.length}, cycle mean ${mean((c) => c.end - c.start).toFixed(1)} ms ` +
            `(max ${Math.max(...cs.map((c) => c.end - c.start))}), pauses mean ${mean((c) => c.pauseMs).toFixed(2)} ms, ` +
            `longest pause ${Math.max(...cs.map((c) => c.maxPauseMs)).toFixed(2)} ms`,
        );
      }
    }
  }
  for (const [k, v] of [...causes].sort((a, b) => b[1] - a[1])) {
    console.log(`  cause ${k}: ${v} (${((100 * v) / Math.max(1, slow)).toFixed(1)}% of slow)`);
  }
  if (offCpu.size > 0) {
    const top = [...offCpu].sort((a, b) => b[1] - a[1]).slice(0, 8);
    console.log(
      `  CPU ms during off-CPU stalls (summed per slow answer): ${top.map(([k, v]) => `${k} ${v.toFixed(0)}`).join(", ")}`,
    );
  }
  // Per-thread CPU over the run (ms per second).
  if (samples.length > 1) {
    const a = samples[0]!;
    const b = samples.at(-1)!;
    const secs = (b.at - a.at) / 1000;
    const per = [...b.threads]
      .filter(([k]) => k !== "loop delay")
      .map(
        ([k, v]) => [k.replace(/#\d+$/, ""), (v - (a.threads.get(k) ?? 0)) / 1e6 / secs] as const,
      )
      .filter(([, v]) => v > 5)
      .sort((x, y) => y[1] - x[1]);
    const own = per.reduce((s, [, v]) => s + v, 0);
    const others = (b.cpu1 - a.cpu1) / secs - own;
    console.log(
      `  threads, ms CPU per s: ${per.map(([k, v]) => `${k} ${v.toFixed(0)}`).join(", ")}; other on CPU 1 ~${Math.max(0, others).toFixed(0)}`,
    );
  }
}
