/**
 * Where the server's CPU goes per request under single events (`track`), paced as
 * run.ts's "half max" row or at full speed, and how long the event loop waits for its
 * core: per thread, CPU (utime + stime), the scheduler's run time and run-queue wait
 * (`/proc/<pid>/task/<tid>/schedstat`), and voluntary / involuntary context switches
 * (`status`), each per request; plus the pinned core's CPU spent outside the server
 * (other processes on that core: the machine may be shared).
 *
 *   bun bench/experiments/half-cpu.ts [--server sluice|baseline] [--no-search]
 *       [--pause MS] [--connections N] [--duration S] [--entry OTHER/src/main.ts]
 *       [--idle NAME,NAME]
 *
 * `--server baseline` loads bench/baseline.ts `single` (bare Bun.serve) the same way;
 * `--no-search` starts sluice with `admin: { searchIndex: false }`. The server runs on
 * CPU 1 and the load on CPU 0, as run.ts does. `--idle Worker,JITWorker` moves the
 * server's threads of those names that run at normal policy (the dedup writer is the
 * normal-policy "Worker") to SCHED_IDLE after the warm-up, from outside (chrt): to see
 * what their share of the core does to the loop's waiting and the p99. "policy" is the thread's scheduling
 * policy (0 normal, 5 SCHED_IDLE).
 */

import { readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { measure } from "../lib/measure.ts";
import { preflight } from "../lib/preflight.ts";
import { type BenchServer, startBaseline, startSluice } from "../lib/servers.ts";
import { SCENARIOS } from "../scenarios.ts";

const argv = process.argv.slice(2);
const opt = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const pauseMs = Number(opt("pause") ?? 10);
const connections = Number(opt("connections") ?? (pauseMs > 0 ? 70 : 16));
const seconds = Number(opt("duration") ?? 8);
const entry = opt("entry") ? resolve(opt("entry")!) : undefined;
const kind = opt("server") ?? "sluice";
const noSearch = argv.includes("--no-search");
/** Thread names (comm) whose normal-policy threads are moved to SCHED_IDLE (chrt -i) once started. */
const idleNames = (opt("idle") ?? "").split(",").filter(Boolean);
const SERVER_CPU = 1;
const scenario = SCENARIOS.find((s) => s.name === "track")!;

interface ThreadSample {
  name: string;
  policy: number;
  cpuS: number;
  runNs: number;
  waitNs: number;
  slices: number;
  voluntary: number;
  involuntary: number;
}

function sample(pid: number): Map<string, ThreadSample> {
  const out = new Map<string, ThreadSample>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const dir = `/proc/${pid}/task/${tid}`;
      const stat = readFileSync(`${dir}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const [run, wait, slices] = readFileSync(`${dir}/schedstat`, "utf8").trim().split(" ");
      const status = readFileSync(`${dir}/status`, "utf8");
      const field = (key: string) => Number(status.match(new RegExp(`${key}:\\s+(\\d+)`))?.[1]);
      out.set(tid, {
        name,
        policy: Number(f[38]),
        cpuS: (Number(f[11]) + Number(f[12])) / 100,
        runNs: Number(run),
        waitNs: Number(wait),
        slices: Number(slices),
        voluntary: field("voluntary_ctxt_switches"),
        involuntary: field("nonvoluntary_ctxt_switches"),
      });
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** Busy seconds of one CPU (/proc/stat: all but idle and iowait). */
function cpuBusy(cpu: number): number {
  const line = readFileSync("/proc/stat", "utf8")
    .split("\n")
    .find((l) => l.startsWith(`cpu${cpu} `))!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  return (total - (v[3] ?? 0) - (v[4] ?? 0)) / 100;
}

/**
 * Samples the event loop's schedstat about every millisecond (from this process, on
 * the other core) and finds its longest stretches of back-to-back windows in which it
 * ran at least 90% of the time (the loop busy: requests queue behind it) or waited for
 * the core at least 50% of the time.
 */
function traceLoop(tid: string) {
  const file = (): [number, number] => {
    const [run, wait] = readFileSync(`/proc/${tid}/task/${tid}/schedstat`, "utf8").split(" ");
    return [Number(run), Number(wait)];
  };
  let [lastRun, lastWait] = file();
  const names = new Map<string, string>();
  for (const t of readdirSync(`/proc/${tid}/task`)) {
    const stat = readFileSync(`/proc/${tid}/task/${t}/stat`, "utf8");
    names.set(t, `${t} ${stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"))}`);
  }
  const runs = () => {
    const out = new Map<string, number>();
    for (const t of names.keys()) {
      try {
        out.set(t, Number(readFileSync(`/proc/${tid}/task/${t}/schedstat`, "utf8").split(" ")[0]));
      } catch {
        // ended
      }
    }
    return out;
  };
  let lastRuns = runs();
  /** In windows where the loop waited >= 50%: each thread's run time, and the windows' length. */
  const inWait = new Map<string, number>();
  let waitWindowsNs = 0;
  let lastT = performance.now();
  let busyRun = 0;
  let waitRun = 0;
  const busyStretches: number[] = [];
  const waitStretches: number[] = [];
  let windows = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    const [run, wait] = file();
    const dt = (now - lastT) * 1e6;
    windows++;
    if ((run - lastRun) / dt >= 0.9) busyRun += dt / 1e6;
    else if (busyRun > 0) {
      busyStretches.push(busyRun);
      busyRun = 0;
    }
    const nowRuns = runs();
    if ((wait - lastWait) / dt >= 0.5) {
      waitRun += dt / 1e6;
      waitWindowsNs += dt;
      for (const [t, r] of nowRuns) {
        inWait.set(t, (inWait.get(t) ?? 0) + r - (lastRuns.get(t) ?? r));
      }
    } else if (waitRun > 0) {
      waitStretches.push(waitRun);
      waitRun = 0;
    }
    [lastRun, lastWait, lastT, lastRuns] = [run, wait, now, nowRuns];
  }, 1);
  const top = (xs: number[]) =>
    xs
      .sort((a, b) => b - a)
      .slice(0, 5)
      .map((x) => x.toFixed(1))
      .join(", ");
  const over = (xs: number[], ms: number) => xs.filter((x) => x >= ms).length;
  return {
    stop: () => clearInterval(timer),
    summary: () =>
      `loop trace (${windows} windows of ~1 ms): busy >= 90% stretches >= 2 ms: ` +
      `${over(busyStretches, 2)}, >= 5 ms: ${over(busyStretches, 5)}, longest ms: ` +
      `${top(busyStretches)}; waiting >= 50% stretches >= 2 ms: ${over(waitStretches, 2)}, ` +
      `longest ms: ${top(waitStretches)}\n` +
      `  in those windows (${(waitWindowsNs / 1e6).toFixed(0)} ms), share of the time each ` +
      `thread ran: ${[...inWait]
        .filter(([, ns]) => ns / waitWindowsNs >= 0.01)
        .sort((a, b) => b[1] - a[1])
        .map(([t, ns]) => `${names.get(t)} ${((100 * ns) / waitWindowsNs).toFixed(0)}%`)
        .join(", ")}`,
  };
}

const server: BenchServer =
  kind === "baseline"
    ? await startBaseline("single", { cpu: SERVER_CPU })
    : await startSluice({
        cpu: SERVER_CPU,
        entry,
        config: noSearch ? { admin: { searchIndex: false } } : undefined,
      });
try {
  if (kind !== "baseline") await preflight(server, scenario);
  await measure(server, scenario, { warmupSeconds: 0, seconds: 3, loaderCpu: 0 });
  for (const [tid, t] of sample(server.pid)) {
    if (t.policy !== 0 || !idleNames.includes(t.name)) continue;
    const chrt = Bun.spawnSync(["chrt", "-i", "-p", "0", tid]);
    console.log(`SCHED_IDLE for ${tid} ${t.name}: ${chrt.exitCode === 0 ? "set" : "refused"}`);
  }
  const before = sample(server.pid);
  const busyBefore = cpuBusy(SERVER_CPU);
  const cpuBefore = server.cpuSeconds();
  const loopTid = String(server.pid);
  const windows = traceLoop(loopTid);
  const m = await measure(server, scenario, {
    warmupSeconds: 0,
    seconds,
    loaderCpu: 0,
    pauseMs,
    connections,
  });
  const after = sample(server.pid);
  windows.stop();
  console.log(windows.summary());
  const serverCpu = server.cpuSeconds() - cpuBefore;
  const othersOnCore = cpuBusy(SERVER_CPU) - busyBefore - serverCpu;
  const per = (x: number) => (x / m.requests).toFixed(1).padStart(7);
  console.log(
    `${kind}${noSearch ? " (no search index)" : ""}, pause ${pauseMs} ms, ${connections} ` +
      `connections: ${m.requests} requests, ${Math.round(m.reqPerSec)} req/s, p50 ` +
      `${m.p50Ms.toFixed(2)} ms, p99 ${m.p99Ms.toFixed(2)} ms; server CPU ` +
      `${((serverCpu * 1e6) / m.requests).toFixed(1)} µs/request ` +
      `(${Math.round((100 * serverCpu) / seconds)}% of a core); others on CPU ${SERVER_CPU}: ` +
      `${Math.round((100 * othersOnCore) / seconds)}% of it`,
  );
  console.log(
    "thread                 policy  CPU µs/req  run µs/req  wait µs/req  wait µs/slice  " +
      "slices/req  vol cs/req  invol cs/req",
  );
  const rows = [...after]
    .map(([tid, a]) => {
      const b = before.get(tid);
      const d = (k: keyof ThreadSample) => (a[k] as number) - ((b?.[k] as number) ?? 0);
      return { tid, a, d };
    })
    .filter(({ d }) => d("runNs") > 5e6)
    .sort((x, y) => y.d("runNs") - x.d("runNs"));
  for (const { tid, a, d } of rows) {
    const slices = d("slices");
    console.log(
      `${`${tid} ${a.name}`.padEnd(22)} ${String(a.policy).padStart(6)} ` +
        `${per(d("cpuS") * 1e6).padStart(11)} ${per(d("runNs") / 1e3).padStart(11)} ` +
        `${per(d("waitNs") / 1e3).padStart(12)} ` +
        `${(slices ? d("waitNs") / 1e3 / slices : 0).toFixed(1).padStart(14)} ` +
        `${(slices / m.requests).toFixed(2).padStart(11)} ` +
        `${(d("voluntary") / m.requests).toFixed(2).padStart(11)} ` +
        `${(d("involuntary") / m.requests).toFixed(3).padStart(13)}`,
    );
  }
} finally {
  await server.stop();
}
