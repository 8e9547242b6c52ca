import type { Scenario } from "../scenarios.ts";
import { machineBusySeconds, sampleRss } from "./proc.ts";
import type { BenchServer } from "./servers.ts";
import { runWrk, type WrkResult } from "./wrk.ts";

/** One server's figures for one scenario. */
export interface Measured {
  requests: number;
  reqPerSec: number;
  eventsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  idleRssMb: number;
  /** The higher of VmHWM and the highest 100 ms VmRSS sample. */
  peakRssMb: number;
  /** Server CPU during the measured run, as a share of one core. */
  serverCpu: number;
  loaderCpu: number;
  /** CPU used by everything else on the machine meanwhile (a noisy neighbour skews a run). */
  otherCpu: number;
  /** Responses with a status >= 400. */
  statusErrors: number;
  /** Connect, read, write errors and timeouts. */
  socketErrors: number;
  poolWraps: number;
}

export interface LoadPlan {
  warmupSeconds: number;
  seconds: number;
  loaderCpu?: number;
  /** Distinct gzip bodies for the warm-up and the measured run (never the same ones). */
  pools?: { warmup: string; measure: string };
  /** Paced run: mean pause per connection in ms. */
  pauseMs?: number;
  connections?: number;
}

let runs = 0;

/** Warms the server up, then runs the measured load while sampling its memory and CPU. */
export async function measure(
  server: BenchServer,
  scenario: Scenario,
  plan: LoadPlan,
): Promise<Measured> {
  const tag = `${Date.now().toString(36)}${(runs++).toString(36)}`;
  const load = (seconds: number, phase: "w" | "m") =>
    runWrk({
      url: `${server.url}${scenario.path}`,
      connections: plan.connections ?? scenario.connections,
      seconds,
      headers: scenario.headers(server.keys),
      mode: scenario.mode,
      tag: `${tag}${phase}`,
      size: scenario.size,
      pool: phase === "w" ? plan.pools?.warmup : plan.pools?.measure,
      pauseMs: plan.pauseMs,
      cpu: plan.loaderCpu,
    });
  if (plan.warmupSeconds > 0) await load(plan.warmupSeconds, "w");
  const rss = sampleRss(server.pid, 200);
  const cpuBefore = server.cpuSeconds();
  const busyBefore = machineBusySeconds();
  const r: WrkResult = await load(plan.seconds, "m");
  const cpuUsed = server.cpuSeconds() - cpuBefore;
  const busy = machineBusySeconds() - busyBefore;
  const sampledPeak = rss.stop();
  const seconds = r.durationUs / 1e6;
  const reqPerSec = r.requests / seconds;
  return {
    requests: r.requests,
    reqPerSec,
    eventsPerSec: reqPerSec * scenario.size,
    p50Ms: r.latencyUs.p50 / 1000,
    p99Ms: r.latencyUs.p99 / 1000,
    p999Ms: r.latencyUs.p999 / 1000,
    idleRssMb: server.idleRssMb,
    peakRssMb: Math.max(sampledPeak, server.memoryMb().hwm),
    serverCpu: cpuUsed / seconds,
    loaderCpu: r.loaderCpu,
    otherCpu: Math.max(0, busy / seconds - cpuUsed / seconds - r.loaderCpu),
    statusErrors: r.errors.status,
    socketErrors: r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout,
    poolWraps: r.poolWraps,
  };
}
