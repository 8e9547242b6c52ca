import { join } from "node:path";
import { EVENT_TEMPLATE } from "./gzip-pool.ts";
import { pinned } from "./proc.ts";

const SCRIPT = join(import.meta.dir, "..", "lua", "events.lua");

/** What events.lua's done() prints after `BENCH_RESULT `. */
export interface WrkResult {
  requests: number;
  durationUs: number;
  bytes: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latencyUs: { mean: number; p50: number; p90: number; p99: number; p999: number; max: number };
  poolWraps: number;
  /** CPU the load generator itself used, as a share of one core. */
  loaderCpu: number;
}

export interface WrkRun {
  url: string;
  connections: number;
  seconds: number;
  headers: Record<string, string>;
  /** events.lua arguments: mode, tag, size, pool file, mean pause in ms. */
  mode: "single" | "batch" | "dup" | "gzip" | "uuid";
  tag: string;
  size: number;
  pool?: string;
  pauseMs?: number;
  cpu?: number;
}

/** Runs one bounded wrk load (one thread) and returns its parsed summary. */
export async function runWrk(run: WrkRun): Promise<WrkResult> {
  const args = ["wrk", "-t1", `-c${run.connections}`, `-d${run.seconds}s`, "--timeout", "10s"];
  for (const [k, v] of Object.entries(run.headers)) args.push("-H", `${k}: ${v}`);
  args.push("-s", SCRIPT, run.url, "--", run.mode, run.tag, String(run.size));
  args.push(run.pool ?? "-", String(run.pauseMs ?? 0));
  const proc = Bun.spawn(pinned(run.cpu, args), {
    stdout: "pipe",
    stderr: "pipe",
    env: {
      ...process.env,
      BENCH_EVENT_TEMPLATE: EVENT_TEMPLATE,
      BENCH_PACED: run.pauseMs ? "1" : "0",
    },
  });
  // wrk stops by itself after -d; this only guards against a hung run.
  const guard = setTimeout(() => proc.kill("SIGKILL"), (run.seconds + 30) * 1000);
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  clearTimeout(guard);
  const line = stdout.split("\n").find((l) => l.startsWith("BENCH_RESULT "));
  if (code !== 0 || !line) {
    throw new Error(`wrk failed (exit ${code}):\n${stdout}\n${stderr}`);
  }
  const result = JSON.parse(line.slice("BENCH_RESULT ".length)) as WrkResult;
  const cpu = proc.resourceUsage()?.cpuTime;
  result.loaderCpu = cpu ? Number(cpu.user + cpu.system) / result.durationUs : Number.NaN;
  return result;
}

/** Whether wrk is installed (Debian/Ubuntu: `apt-get install -y wrk`). */
export function hasWrk(): boolean {
  return Bun.which("wrk") !== null;
}
