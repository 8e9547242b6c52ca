/**
 * Issue 17: events/s of 1, 2 and 3 sluice instances on one machine, sharing one
 * nats-server (`log.backend: nats`) and one redis-server (`state.backend: redis`), and
 * for reference the same with each instance's own file log (`log.backend: file`).
 *
 *   bun bench/scaleout/instances.ts [--duration S] [--warmup S] [--counts 1,2,3]
 *       [--logs nats,file] [--batch N] [--connections C]
 *
 * Starts its own nats-server -js and redis-server on free ports
 * (test/scaleout/servers.ts), then per log backend and instance count: N `sluice serve`
 * processes (bench/lib/servers.ts), and one wrk per instance (`batch` mode: N events per
 * request, unique messageIds), C connections in all, spread evenly. Prints events/s and
 * the CPU each part used over the measured window (sluice processes, nats-server,
 * redis-server, wrk), as a share of one core and of the machine, which names the
 * bottleneck: on a machine of two cores the parts compete for the same two.
 */
import { cpus } from "node:os";
import { startNatsServer, startRedisServer } from "../../test/scaleout/servers.ts";
import { cpuSeconds } from "../lib/proc.ts";
import { type BenchServer, startSluice } from "../lib/servers.ts";
import { runWrk } from "../lib/wrk.ts";

const argv = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1]! : fallback;
};
const seconds = Number(opt("duration", "10"));
const warmup = Number(opt("warmup", "3"));
const counts = opt("counts", "1,2,3").split(",").map(Number);
const logs = opt("logs", "nats,file").split(",") as ("nats" | "file")[];
const batch = Number(opt("batch", "50"));
const connections = Number(opt("connections", "24"));

const say = (msg: string) => console.error(`[scaleout] ${msg}`);
const loadavg = async () =>
  (await Bun.file("/proc/loadavg").text()).split(" ").slice(0, 3).join(" ");

interface Row {
  log: string;
  instances: number;
  eventsPerSec: number;
  p50ms: number;
  p99ms: number;
  errors: number;
  /** CPU over the window, in cores (1.0 = one core busy the whole time). */
  cpu: { sluice: number; nats: number; redis: number; wrk: number };
  load: string;
}

const nats = await startNatsServer();
const redis = await startRedisServer();
const rows: Row[] = [];
let run = 0;
try {
  for (const log of logs) {
    for (const n of counts) {
      run++;
      const stream = `BENCH_${process.pid}_${run}`;
      const config = {
        state: { backend: "redis", url: redis.url, keyPrefix: `bench${process.pid}-${run}` },
        log:
          log === "nats"
            ? {
                backend: "nats",
                servers: [nats.url],
                stream,
                subjectPrefix: `bench${process.pid}_${run}.events`,
              }
            : { backend: "file" },
        admin: { searchIndex: false },
      };
      const servers: BenchServer[] = [];
      try {
        for (let i = 0; i < n; i++) servers.push(await startSluice({ config }));
        const per = Math.max(1, Math.round(connections / n));
        const load = (tag: string, secs: number) =>
          Promise.all(
            servers.map((s, i) =>
              runWrk({
                url: `${s.url}/v1/batch`,
                connections: per,
                seconds: secs,
                headers: {
                  authorization: `Basic ${btoa(`${s.keys.server}:`)}`,
                  "content-type": "application/json",
                },
                mode: "batch",
                tag: `${tag}-${run}-${i}`,
                size: batch,
              }),
            ),
          );
        if (warmup > 0) await load("warm", warmup);
        const cpu0 = {
          sluice: servers.reduce((t, s) => t + s.cpuSeconds(), 0),
          nats: cpuSeconds(nats.pid!),
          redis: cpuSeconds(redis.pid!),
        };
        const load0 = await loadavg();
        const results = await load("run", seconds);
        const wall = Math.max(...results.map((r) => r.durationUs)) / 1e6;
        const requests = results.reduce((t, r) => t + r.requests, 0);
        const errors = results.reduce(
          (t, r) => t + r.errors.status + r.errors.timeout + r.errors.connect + r.errors.read,
          0,
        );
        const row: Row = {
          log,
          instances: n,
          eventsPerSec: ((requests - errors) * batch) / wall,
          p50ms: Math.max(...results.map((r) => r.latencyUs.p50)) / 1000,
          p99ms: Math.max(...results.map((r) => r.latencyUs.p99)) / 1000,
          errors,
          cpu: {
            sluice: (servers.reduce((t, s) => t + s.cpuSeconds(), 0) - cpu0.sluice) / wall,
            nats: (cpuSeconds(nats.pid!) - cpu0.nats) / wall,
            redis: (cpuSeconds(redis.pid!) - cpu0.redis) / wall,
            wrk: results.reduce((t, r) => t + r.loaderCpu, 0),
          },
          load: `${load0} → ${await loadavg()}`,
        };
        rows.push(row);
        say(JSON.stringify(row));
      } finally {
        for (const s of servers) await s.stop();
      }
    }
  }
} finally {
  await nats.cleanup();
  await redis.cleanup();
}

const f = (x: number, d = 0) => x.toFixed(d);
console.log(
  `\n${cpus().length} cores; nats-server ${nats.version}${nats.syncAlways ? " (sync_interval: always)" : " (no sync_interval: acks before fsync)"}; ` +
    `${batch} events a request, ${connections} connections in all; ${seconds} s per row\n`,
);
console.log(
  "| log | instances | events/s | p50 ms | p99 ms | errors | CPU cores: sluice / nats / redis / wrk | load average |",
);
console.log("| --- | --: | --: | --: | --: | --: | --- | --- |");
for (const r of rows) {
  const c = r.cpu;
  console.log(
    `| ${r.log} | ${r.instances} | ${f(r.eventsPerSec)} | ${f(r.p50ms, 1)} | ${f(r.p99ms, 1)} | ${r.errors} | ` +
      `${f(c.sluice, 2)} / ${f(c.nats, 2)} / ${f(c.redis, 2)} / ${f(c.wrk, 2)} | ${r.load} |`,
  );
}
