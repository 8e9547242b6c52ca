/**
 * Issue 17: the per-event costs docs/scaling.md's model is built from, on this machine.
 *
 *   bun bench/scaleout/append.ts [events]
 *
 * Starts its own nats-server -js and redis-server (test/scaleout/servers.ts) and
 * measures, each over `events` ~600 B events, with the CPU of the client (this
 * process) and of the server per event:
 * - JetStream publish + ack through sluice's `NatsLogStream.append` (plain publishes
 *   under one inbox subscription), 100 events a call (a batch request) with 10 calls in
 *   flight, and 1 event a call with 100 in flight (single-event requests);
 * - the same through `@nats-io/jetstream`'s `js.publish` (a request per message), 100
 *   in flight: what `append` replaced;
 * - the same `append` on a JetStream cluster of three nats-servers on this machine
 *   (stream R3: each ack waits for a quorum), server CPU summed over the three;
 * - Redis: the dedup check-and-claim script for 100 ids a call, and pipelined `SET`s of
 *   the keys after the ack (sluice's `RedisDedupStore`), and the rate-limit script.
 */

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import pino from "pino";
import { RedisDedupStore } from "../../src/dedup/redis.ts";
import { NatsLogStream } from "../../src/log/nats/nats-log.ts";
import type { AppendRecord } from "../../src/log/stream.ts";
import { RedisRateLimiter } from "../../src/ratelimit/redis.ts";
import { RedisConnection } from "../../src/state/redis.ts";
import {
  findProgram,
  freePort,
  startNatsServer,
  startRedisServer,
} from "../../test/scaleout/servers.ts";
import { cpuSeconds } from "../lib/proc.ts";

const EVENTS = Number(process.argv[2] ?? 50_000);
const silent = pino({ level: "silent" });
const payload = new Uint8Array(600).fill(0x61);

interface Cost {
  name: string;
  eventsPerSec: number;
  /** CPU per event, µs: this process (the sluice side) and the server. */
  clientUs: number;
  serverUs: number;
}

/** Runs `calls` of `perCall` events, `inFlight` calls at a time, and the CPU both sides used. */
async function cost(
  name: string,
  serverPid: number | number[],
  perCall: number,
  inFlight: number,
  call: (from: number, count: number) => Promise<unknown>,
): Promise<Cost> {
  for (let i = 0; i < 20; i++) await call(-1e9 - i * perCall, perCall); // warm-up
  const calls = Math.ceil(EVENTS / perCall);
  const pids = Array.isArray(serverPid) ? serverPid : [serverPid];
  const serverCpu = () => pids.reduce((t, p) => t + cpuSeconds(p), 0);
  const s0 = serverCpu();
  const u0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < calls) {
        const n = next++;
        await call(n * perCall, perCall);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const u = process.cpuUsage(u0);
  const events = calls * perCall;
  return {
    name,
    eventsPerSec: events / seconds,
    clientUs: (u.user + u.system) / events,
    serverUs: ((serverCpu() - s0) * 1e6) / events,
  };
}

const nats = await startNatsServer();
const redis = await startRedisServer();
const rows: Cost[] = [];
const load0 = (await Bun.file("/proc/loadavg").text()).split(" ").slice(0, 3).join(" ");
try {
  const log = await NatsLogStream.open({
    servers: [nats.url],
    stream: "COSTS",
    subjectPrefix: "costs",
    logger: silent,
  });
  const recs = (from: number, count: number, tag: string): AppendRecord[] =>
    Array.from({ length: count }, (_, i) => ({
      sourceId: "web",
      type: "track",
      messageId: `${tag}-${from + i}`,
      payload,
    }));
  rows.push(
    await cost("append, 100 events a call, 10 calls in flight", nats.pid!, 100, 10, (f, c) =>
      log.append(recs(f, c, "a100")),
    ),
  );
  rows.push(
    await cost("append, 1 event a call, 100 calls in flight", nats.pid!, 1, 100, (f, c) =>
      log.append(recs(f, c, "a1")),
    ),
  );
  const js = jetstream(log.use().nc);
  rows.push(
    await cost("js.publish (request per message), 100 in flight", nats.pid!, 1, 100, (f) => {
      const h = headers();
      h.set("Sluice-Type", "track");
      return js.publish("costs.web", payload, { msgID: `web:js-${f}`, headers: h });
    }),
  );
  await log.close();

  const cluster = await startNatsCluster();
  try {
    const r3 = await NatsLogStream.open({
      servers: cluster.urls,
      stream: "COSTS_R3",
      subjectPrefix: "costs3",
      replicas: 3,
      openWaitMs: 30_000,
      logger: silent,
    });
    if (!r3.healthy()) throw new Error(`R3 stream not ready: ${r3.health().error}`);
    rows.push(
      await cost(
        "append on R3 (3 servers), 100 events a call, 10 calls in flight",
        cluster.pids,
        100,
        10,
        (f, c) => r3.append(recs(f, c, "r3")),
      ),
    );
    rows.push(
      await cost(
        "append on R3 (3 servers), 1 event a call, 100 calls in flight",
        cluster.pids,
        1,
        100,
        (f, c) => r3.append(recs(f, c, "r3s")),
      ),
    );
    await r3.close();
  } finally {
    await cluster.stop();
  }

  const conn = await RedisConnection.open(redis.url, { logger: silent, keyPrefix: "costs" });
  const dedup = RedisDedupStore.open(conn, { windowSeconds: 86_400, logger: silent });
  const ids = (from: number, count: number) =>
    Array.from({ length: count }, (_, i) => `id-${from + i}`);
  rows.push(
    await cost(
      "dedup check + claim (script), 100 ids a call, 10 in flight",
      redis.pid!,
      100,
      10,
      (f, c) => dedup.seen("web", ids(f, c)),
    ),
  );
  rows.push(
    await cost(
      "dedup key write (pipelined SETs), 100 keys a call, 10 in flight",
      redis.pid!,
      100,
      10,
      (f, c) =>
        dedup.remember(
          ids(f, c).map((messageId) => ({ sourceId: "web", messageId })),
          String(f) as never,
        ),
    ),
  );
  const limiter = new RedisRateLimiter(conn);
  const spec = { eventsPerSecond: 1e9, burst: 1e9 };
  rows.push(
    await cost("rate-limit script, 1 a request, 100 in flight", redis.pid!, 1, 100, (f) =>
      limiter.take(`wk-${f % 50}`, 1, spec),
    ),
  );
  await dedup.close();
  await conn.close();
} finally {
  await nats.cleanup();
  await redis.cleanup();
}

console.log(
  `\nnats-server ${nats.version}${nats.syncAlways ? " (sync_interval: always)" : " (no sync_interval)"}, ` +
    `${EVENTS} events per row, load average at start ${load0}\n`,
);
console.log("| operation | events/s | client CPU µs/event | server CPU µs/event |");
console.log("| --- | --: | --: | --: |");
for (const r of rows) {
  console.log(
    `| ${r.name} | ${r.eventsPerSec.toFixed(0)} | ${r.clientUs.toFixed(1)} | ${r.serverUs.toFixed(1)} |`,
  );
}

/** Three nats-servers with JetStream in one cluster on loopback ports, stopped by PID. */
async function startNatsCluster(): Promise<{
  urls: string[];
  pids: number[];
  stop(): Promise<void>;
}> {
  const bin = findProgram("nats-server");
  if (!bin) throw new Error("nats-server is not installed");
  const dir = mkdtempSync(join(tmpdir(), "sluice-nats-r3-"));
  const ports = [0, 1, 2].map(() => freePort());
  const routes = [0, 1, 2].map(() => freePort());
  const procs = [0, 1, 2].map((i) => {
    const conf = join(dir, `n${i}.conf`);
    writeFileSync(
      conf,
      [
        `server_name: n${i}`,
        `listen: "127.0.0.1:${ports[i]}"`,
        `jetstream { store_dir: ${JSON.stringify(join(dir, `n${i}`))} }`,
        `cluster { name: bench, listen: "127.0.0.1:${routes[i]}", routes: [${routes
          .filter((_, j) => j !== i)
          .map((p) => `"nats://127.0.0.1:${p}"`)
          .join(", ")}] }`,
        "",
      ].join("\n"),
    );
    return Bun.spawn([bin, "-c", conf], { stdout: "ignore", stderr: "ignore" });
  });
  return {
    urls: ports.map((p) => `nats://127.0.0.1:${p}`),
    pids: procs.map((p) => p.pid),
    async stop() {
      for (const p of procs) p.kill("SIGTERM");
      await Promise.all(procs.map((p) => p.exited));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
