/**
 * busy-stretches.ts: tail-trace.ts's run (same server, probe, client, GC log), reported
 * per busy stall of the event loop instead of per slow answer (issue 11, helper busy):
 * each loop stall > 2 ms with the loop's thread on the CPU for >= 90% of it is put down
 * to a collection of the loop's heap (JSC GC log, heap 0) overlapping it, a timer
 * callback / worker message / Bun.gc inside it, the JS heap falling across it, or
 * "unexplained". For each cause it prints the p99 with that cause's stall time taken out
 * of the answers it overlaps (a what-if), and the answers > 5 ms it overlaps.
 *
 *   taskset -c 0 bun bench/experiments/busy-stretches.ts --duration 8 --connections 70 --pause 10 --gclog --sample 1
 *
 * Below, tail-trace.ts's description of the run:
 *
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
  const first = client.sent[0]!;
  const last = client.sent.at(-1)!;
  const stalls = probe.stalls.filter((s) => s[0] >= first && s[0] <= last + 100);
  const inside = [...probe.timers, ...probe.messages, ...probe.gcs];
  const overlaps = (a0: number, a1: number, b0: number, b1: number) => a0 < b1 && b0 < a1;
  const p99 = (lat: number[]) =>
    pct(
      [...lat].sort((a, b) => a - b),
      99,
    );
  console.log(
    `${name}: load ${load}, ${Math.round(n / span)} req/s, p50/p99 ${pct(
      [...client.latency].sort((a, b) => a - b),
      50,
    ).toFixed(2)}/${p99(client.latency).toFixed(2)} ms, answers ${n}`,
  );
  const kinds = new Map<string, { n: number; ms: number; max: number; list: [number, number][] }>();
  const add = (k: string, s: (typeof stalls)[number]) => {
    const e = kinds.get(k) ?? { n: 0, ms: 0, max: 0, list: [] };
    e.n++;
    e.ms += s[1];
    e.max = Math.max(e.max, s[1]);
    e.list.push([s[0] - s[1], s[0]]);
    kinds.set(k, e);
  };
  for (const s of stalls) {
    const [end, gap, cpu, heapMb] = s;
    const start = end - gap;
    const cls = cpu / gap >= 0.9 ? "busy" : cpu / gap > 0.5 ? "mixed" : "off-CPU";
    let cause: string;
    const gc = cycles.find((c) => c.heap === 0 && overlaps(start, end, c.start - 1, c.end + 1));
    const cb = inside.find((b) => overlaps(start, end, b[0], b[0] + b[1]));
    if (gc) cause = `gc ${gc.kind}`;
    else if (cb) cause = `callback: ${cb[2].slice(0, 40)}`;
    else if (heapMb < -1) cause = "heap fell (gc, not in log)";
    else cause = "unexplained";
    add(`${cls} | ${cause}`, s);
    if (cls === "off-CPU") {
      // As tail-trace.ts: the loop's run-queue wait and the threads' CPU between the
      // 1 ms samples around the stall; "blocked" when the loop waited < 50% of it.
      const before = samples.findLast((x) => x.at <= start);
      const after = samples.find((x) => x.at >= end);
      if (before && after) {
        const ran = new Map<string, number>();
        let own = 0;
        for (const [k, v] of after.threads) {
          const d = (v - (before.threads.get(k) ?? v)) / 1e6;
          if (k !== "loop delay") own += d;
          const key = k.replace(/#\d+$/, "").replace(/\d+$/, "N");
          if (d > 0) ran.set(key, (ran.get(key) ?? 0) + d);
        }
        const delay = ran.get("loop delay") ?? 0;
        ran.delete("loop delay");
        ran.delete("event loop");
        ran.set("other processes", Math.max(0, after.cpu1 - before.cpu1 - own));
        const top = [...ran].sort((a, b) => b[1] - a[1])[0]?.[0] ?? "?";
        add(`off-CPU | ${delay >= 0.5 * gap ? "runnable" : "blocked"}, most: ${top}`, s);
      }
    }
    add(`any | ${cause.startsWith("callback") ? "callback" : cause}`, s);
    // Chance control: the same collections moved 50 ms later.
    if (
      cls === "busy" &&
      cycles.some((c) => c.heap === 0 && overlaps(start, end, c.start + 49, c.end + 51))
    )
      add("busy | (control: gc log shifted +50 ms)", s);
    add(`${cls} | (all)`, s);
    add("all | (all)", s);
  }
  for (const [k, e] of [...kinds].sort((a, b) => a[0].localeCompare(b[0]))) {
    // What-if: the answers overlapping these stalls, shortened by the overlap.
    const lat = client.latency.map((l, i) => {
      const t0 = client.sent[i]!;
      const t1 = t0 + l;
      let cut = 0;
      for (const [a, b] of e.list) cut += Math.max(0, Math.min(t1, b) - Math.max(t0, a));
      return Math.max(0, l - cut);
    });
    const slowHit = client.latency.filter((l, i) => {
      if (l <= slowMs) return false;
      const t0 = client.sent[i]!;
      return e.list.some(([a, b]) => overlaps(t0, t0 + l, a, b));
    }).length;
    console.log(
      `  ${k.padEnd(52)} ${String(e.n).padStart(4)} stalls, ${e.ms.toFixed(0).padStart(5)} ms, max ${e.max.toFixed(1).padStart(5)} ms; answers >${slowMs} ms over them ${String(slowHit).padStart(5)}; p99 without them ${p99(lat).toFixed(2)} ms`,
    );
  }
  const slowAll = client.latency.filter((l) => l > slowMs).length;
  console.log(`  answers >${slowMs} ms: ${slowAll}`);
}
