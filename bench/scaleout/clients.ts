/**
 * Issue 17: which clients sluice's scale-out backends use, by measurement on Bun.
 * `bun bench/scaleout/clients.ts [ops]` starts its own nats-server -js and redis-server
 * (test/scaleout/servers.ts) and measures, on one connection each:
 * - JetStream publish + ack (`@nats-io/jetstream` over `@nats-io/transport-node`), a
 *   ~600 B event with a Nats-Msg-Id: one at a time (latency) and 100 in flight
 *   (throughput: what one request's "publish concurrently, await all" does);
 * - Redis round trips with Bun's built-in RedisClient and with ioredis (devDependency,
 *   for this comparison only): one at a time (latency) and 100 in flight (throughput,
 *   both clients pipeline what is in flight), for SET NX PX (a dedup key) and EVALSHA
 *   (the rate-limit script).
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { RedisClient } from "bun";
import Redis from "ioredis";
import { TAKE_SCRIPT } from "../../src/ratelimit/redis-script.ts";
import { startNatsServer, startRedisServer } from "../../test/scaleout/servers.ts";

const OPS = Number(process.argv[2] ?? 5000);
const IN_FLIGHT = 100;

interface Figures {
  name: string;
  p50us: number;
  p99us: number;
  perSec: number;
}

/** `op` one at a time (latency), then OPS more with IN_FLIGHT at once (throughput). */
async function measure(name: string, op: (i: number) => Promise<unknown>): Promise<Figures> {
  for (let i = 0; i < 200; i++) await op(-i - 1); // warm-up
  const lat: number[] = [];
  for (let i = 0; i < Math.min(OPS, 2000); i++) {
    const t = Bun.nanoseconds();
    await op(i);
    lat.push((Bun.nanoseconds() - t) / 1000);
  }
  lat.sort((a, b) => a - b);
  const start = Bun.nanoseconds();
  for (let i = 0; i < OPS; i += IN_FLIGHT) {
    const batch: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(OPS, i + IN_FLIGHT); j++) batch.push(op(OPS + j));
    await Promise.all(batch);
  }
  const seconds = (Bun.nanoseconds() - start) / 1e9;
  return {
    name,
    p50us: lat[Math.floor(lat.length * 0.5)]!,
    p99us: lat[Math.floor(lat.length * 0.99)]!,
    perSec: OPS / seconds,
  };
}

const load = (await Bun.file("/proc/loadavg").text()).split(" ").slice(0, 3).join(" ");
const nats = await startNatsServer();
const redis = await startRedisServer();
const results: Figures[] = [];
try {
  const nc = await connect({ servers: nats.url });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "BENCH", subjects: ["bench.>"] });
  const js = jetstream(nc);
  const payload = new TextEncoder().encode(
    JSON.stringify({
      type: "track",
      event: "Product Viewed",
      userId: "user-123456",
      messageId: "m".repeat(36),
      properties: { sku: "A-1", price: 12.5, text: "x".repeat(300) },
      receivedAt: new Date().toISOString(),
    }),
  );
  const run = Date.now().toString(36);
  results.push(
    await measure("JetStream publish+ack", (i) =>
      js.publish("bench.web", payload, { msgID: `web:${run}-${i}` }),
    ),
  );
  await nc.close();

  const bun = new RedisClient(redis.url);
  const io = new Redis(redis.url);
  const sha = (await bun.send("SCRIPT", ["LOAD", TAKE_SCRIPT])) as string;
  const spec = ["10000000", "100000000"]; // never refuses: every call does the full work
  results.push(
    await measure("Bun RedisClient SET NX PX", (i) =>
      bun.send("SET", [`d:web:${run}-${i}`, "1", "NX", "PX", "86400000"]),
    ),
    await measure("ioredis SET NX PX", (i) =>
      io.set(`d:web:io${run}-${i}`, "1", "PX", 86_400_000, "NX"),
    ),
    await measure("Bun RedisClient EVALSHA take", () =>
      bun.send("EVALSHA", [sha, "1", "rl:bench", "1", ...spec, ""]),
    ),
    await measure("ioredis EVALSHA take", () =>
      io.evalsha(sha, 1, "rl:bench-io", "1", ...spec, ""),
    ),
  );
  bun.close();
  io.disconnect();
} finally {
  await nats.cleanup();
  await redis.cleanup();
}

console.log(`load average at start: ${load}; nats-server ${nats.version}; ${OPS} ops each`);
console.log("| client, operation | p50 µs (1 at a time) | p99 µs | ops/s (100 in flight) |");
console.log("|---|---:|---:|---:|");
for (const r of results) {
  console.log(
    `| ${r.name} | ${r.p50us.toFixed(0)} | ${r.p99us.toFixed(0)} | ${r.perSec.toFixed(0)} |`,
  );
}
