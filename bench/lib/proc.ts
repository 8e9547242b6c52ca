import { readdirSync, readFileSync } from "node:fs";

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const { port } = probe;
  probe.stop(true);
  return port;
}

/** Resident and peak resident memory of one process, in MB (from /proc/<pid>/status). */
function processMemoryMb(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
  return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
}

/** `pid` and every process below it (sluice runs functions in a child process). */
export function processTree(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(name)]);
    } catch {
      // exited while we looked
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) tree.push(...(parents.get(tree[i]!) ?? []));
  return tree;
}

/**
 * Memory of a server and its child processes, in MB: `rss` is their sum now, `hwm` the
 * main process's own peak (the kernel keeps no peak of a sum; sampleRss adds one).
 */
export function memoryMb(pid: number): { rss: number; hwm: number } {
  let rss = 0;
  for (const p of processTree(pid)) {
    try {
      rss += processMemoryMb(p).rss;
    } catch {
      // exited while we looked
    }
  }
  return { rss, hwm: processMemoryMb(pid).hwm };
}

const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system, all threads) a process and its children have used so far. */
export function cpuSeconds(pid: number): number {
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // exited while we looked
    }
  }
  return ticks / TICKS_PER_SECOND;
}

/** Busy CPU seconds of the whole machine so far (all cores; idle and iowait left out). */
export function machineBusySeconds(): number {
  const fields = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!.split(/\s+/).slice(1);
  // user nice system idle iowait irq softirq steal
  const busy = [0, 1, 2, 5, 6, 7].reduce((sum, i) => sum + Number(fields[i] ?? 0), 0);
  return busy / TICKS_PER_SECOND;
}

/** Samples the process tree's RSS every `everyMs` until stopped; returns the highest, in MB. */
export function sampleRss(pid: number, everyMs = 200): { stop(): number } {
  let peak = 0;
  const take = () => {
    try {
      peak = Math.max(peak, memoryMb(pid).rss);
    } catch {
      // The process is gone; keep what was seen.
    }
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return peak;
    },
  };
}

/** Prefix that pins a command to one CPU (`taskset`), or nothing when pinning is off. */
export function pinned(cpu: number | undefined, cmd: string[]): string[] {
  return cpu === undefined ? cmd : ["taskset", "-c", String(cpu), ...cmd];
}

/** Waits until `url` answers (any HTTP status), or throws after `timeoutMs`. */
export async function waitForHttp(
  url: string,
  proc: { exitCode: number | null },
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`server exited with code ${proc.exitCode}`);
    try {
      await fetch(url);
      return;
    } catch {
      await Bun.sleep(50);
    }
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

/** SIGTERM, then SIGKILL after `graceMs`: ends one child process started by the bench. */
export async function stopProcess(proc: ReturnType<typeof Bun.spawn>, graceMs = 5_000) {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill("SIGTERM");
  const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
  await proc.exited;
  clearTimeout(timer);
}

/** One thread's counters so far (from /proc/<pid>/task/<tid>/stat). */
export interface ThreadSample {
  name: string;
  /** CPU seconds in user and in kernel mode. */
  user: number;
  system: number;
  /** Page faults served without I/O (fresh or shared pages). */
  minorFaults: number;
}

/** Every thread of one process, by "tid name" (a thread that ended is simply missing). */
export function threadSamples(pid: number): Map<string, ThreadSample> {
  const out = new Map<string, ThreadSample>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      // Fields after the name: minflt is field 10, utime 14, stime 15 (1-based, proc(5)).
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(`${tid} ${name}`, {
        name,
        user: Number(fields[11]) / TICKS_PER_SECOND,
        system: Number(fields[12]) / TICKS_PER_SECOND,
        minorFaults: Number(fields[7]),
      });
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}
