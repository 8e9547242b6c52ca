/**
 * The rounds of bench/experiments/tail-trace.ts and busy-stretches.ts: each starts
 * `sluice serve` under tail-probe.ts (pinned to CPU 1), warms it up with wrk for 3 s,
 * paces single events with tail-client.ts (CPU 0) while sampling the server's threads and
 * CPU 1, optionally with JSC's GC log timed as it comes, then hands what it recorded to
 * the script's own `report`.
 */
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { SCENARIOS } from "../scenarios.ts";
import { measure } from "./measure.ts";
import { preflight } from "./preflight.ts";
import { pinned } from "./proc.ts";
import { startSluice } from "./servers.ts";

const HERE = join(import.meta.dir, "..", "..", "src", "main.ts");
const PROBE = join(import.meta.dir, "..", "experiments", "tail-probe.ts");
const CLIENT = join(import.meta.dir, "..", "experiments", "tail-client.ts");
const scenario = SCENARIOS.find((s) => s.name === "track")!;

export interface TailClient {
  sent: number[];
  latency: number[];
  bad: number;
  stalls: [number, number][];
}

export type TailSample = { at: number; threads: Map<string, number>; cpu1: number };

export interface TailOptions {
  seconds: number;
  rounds: number;
  connections: number;
  pauseMs: number;
  sampleMs: number;
  /** Run the server with JSC's GC log (BUN_JSC_logGC=1). */
  gcLog: boolean;
  /** Another tree's src/main.ts, run first in each round (A/B). */
  other?: string;
  /** `NAMES:N`: a second server per round with those threads reniced to N after warm-up. */
  renice?: string;
  /** A filled window's folder: each server starts on a copy of its dedup files. */
  filled?: string;
}

export type TailReport = (
  name: string,
  load: string,
  client: TailClient,
  probe: Probe,
  samples: TailSample[],
  cycles: GcCycle[],
) => void;

/** One collection of one heap (0: the first to log, the event loop's) from JSC's GC log. */
export interface GcCycle {
  heap: number;
  kind: string;
  start: number;
  end: number;
  pauseMs: number;
  maxPauseMs: number;
}

export interface Probe {
  stalls: [number, number, number, number][];
  timers: [number, number, string, number][];
  gcs: [number, number, string, number][];
  messages: [number, number, string, number][];
  writes: [number, number, number][];
  heap?: {
    heapSize: number;
    objectCount: number;
    extra: number;
    types: [string, number][];
    fullGcMs: number;
  };
}

/** ns on the CPU per thread (by tid, with its name) of `pid`; "loop delay": the event loop's ns runnable but waiting. */
function threadNs(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  try {
    out.set(
      "loop delay",
      Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, "utf8").split(" ")[1]),
    );
  } catch {
    // gone
  }
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const policy = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[38];
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim();
      const name = policy === "5" ? `${comm} (idle)` : comm;
      const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      out.set(`${tid === String(pid) ? "event loop" : name}#${tid}`, ns);
    } catch {
      // gone
    }
  }
  return out;
}

/** CPU 1's busy time in ms (from /proc/stat). */
function cpu1BusyMs(): number {
  const line = readFileSync("/proc/stat", "utf8")
    .split("\n")
    .find((l) => l.startsWith("cpu1 "))!;
  const f = line.split(/\s+/).slice(1).map(Number);
  return [0, 1, 2, 5, 6, 7].reduce((s: number, i) => s + (f[i] ?? 0), 0) * 10;
}

export const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

/** Runs `rounds` rounds (of one, or two variants interleaved), calling `report` after each run. */
export async function runTailRounds(
  { seconds, rounds, connections, pauseMs, sampleMs, gcLog, other, renice, filled }: TailOptions,
  report: TailReport,
): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    const variants: [string, string | undefined][] = other
      ? [
          [other, undefined],
          [HERE, undefined],
        ]
      : renice
        ? [
            [HERE, undefined],
            [HERE, renice],
          ]
        : [[HERE, undefined]];
    for (const [tree, nice] of variants) {
      const work = mkdtempSync(join(tmpdir(), "sluice-tail-"));
      const out = join(work, "probe.json");
      process.env.TAIL_OUT = out;
      process.env.TAIL_TREE = tree;
      // As the product path sets it (allocator-env.ts), without the re-exec.
      process.env.MIMALLOC_PURGE_HOLES_MIN_INTERVAL ??= "1000";
      const cycles: GcCycle[] = [];
      const open = new Map<string, GcCycle>();
      const heaps: string[] = [];
      if (gcLog) process.env.BUN_JSC_logGC = "1";
      const server = await startSluice({
        cpu: 1,
        entry: PROBE,
        prepare: filled
          ? async (dataDir) => {
              for (const name of readdirSync(filled)) {
                if (!name.startsWith("dedup.db") && name !== "dedup-filter") continue;
                const cp = Bun.spawnSync(["cp", "-r", join(filled, name), join(dataDir, name)]);
                if (cp.exitCode !== 0) throw new Error(`copying ${name}: ${cp.stderr.toString()}`);
              }
            }
          : undefined,
        onStderr: (line) => {
          const at = Date.now();
          if (process.env.TAIL_GCLOG) appendFileSync(process.env.TAIL_GCLOG, `${at} ${line}\n`);
          const m = /^\[GC<(0x[0-9a-f]+)>: (START .*?=> (\w+)|.*)/.exec(line);
          if (!m) return;
          const heap = m[1]!;
          if (!heaps.includes(heap)) heaps.push(heap);
          const pause = Number(/ p=([\d.]+)ms/.exec(line)?.[1] ?? 0);
          if (m[3])
            open.set(heap, {
              heap: heaps.indexOf(heap),
              kind: m[3],
              start: at,
              end: at,
              pauseMs: 0,
              maxPauseMs: 0,
            });
          const c = open.get(heap);
          if (!c) return;
          c.pauseMs += pause;
          c.maxPauseMs = Math.max(c.maxPauseMs, pause);
          if (line.includes(" END]")) {
            c.end = at;
            cycles.push(c);
            open.delete(heap);
          }
        },
      });
      delete process.env.BUN_JSC_logGC;
      let client: TailClient;
      const samples: TailSample[] = [];
      const load = loadavg()[0]!.toFixed(2);
      let rss = "";
      try {
        await preflight(server, scenario);
        await measure(server, scenario, { warmupSeconds: 0, seconds: 3, loaderCpu: 0 });
        if (nice) {
          const [names, n] = nice.split(":") as [string, string];
          for (const tid of readdirSync(`/proc/${server.pid}/task`)) {
            const stat = readFileSync(`/proc/${server.pid}/task/${tid}/stat`, "utf8");
            const idle = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[38] === "5";
            const comm = readFileSync(`/proc/${server.pid}/task/${tid}/comm`, "utf8").trim();
            if (names.split(",").includes(comm) && !idle)
              Bun.spawnSync(["renice", "-n", n, "-p", tid]);
          }
        }
        const sampler = setInterval(() => {
          samples.push({ at: Date.now(), threads: threadNs(server.pid), cpu1: cpu1BusyMs() });
        }, sampleMs);
        const proc = Bun.spawn(
          pinned(0, [
            process.execPath,
            CLIENT,
            server.url,
            scenario.path,
            server.keys.browser,
            String(connections),
            String(pauseMs),
            String(seconds),
            `tail${round}${Date.now().toString(36)}`,
          ]),
          { stdout: "pipe", stderr: "inherit" },
        );
        const text = await new Response(proc.stdout).text();
        clearInterval(sampler);
        client = JSON.parse(text);
        const status = readFileSync(`/proc/${server.pid}/status`, "utf8");
        const kb = (f: string) =>
          Number(new RegExp(`^${f}:\\s+(\\d+) kB`, "m").exec(status)?.[1]) / 1024;
        rss = `RSS ${kb("VmRSS").toFixed(0)} MB, peak ${kb("VmHWM").toFixed(0)} MB`;
      } finally {
        await server.stop();
      }
      const probe = JSON.parse(readFileSync(out, "utf8")) as Probe;
      rmSync(work, { recursive: true, force: true });
      const name =
        tree !== HERE ? "A (entry)" : nice ? `B (reniced ${nice})` : renice ? "A" : "B (this tree)";
      report(name, load, client, probe, samples, cycles);
      console.log(`  server at the end: ${rss}`);
    }
  }
}
