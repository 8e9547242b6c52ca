/**
 * The cost of one call through the function runtime without HTTP: server → function
 * host process → Bun Worker → host → server, with a one-function chain that adds a
 * property. Prints p50/p99 of sequential calls (latency) and calls/s with 64 in
 * flight (throughput). Run: `bun bench/functions-roundtrip.ts [calls]`.
 */
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { FunctionPool } from "../src/functions/pool.ts";
import { sandboxFor } from "../src/functions/setup.ts";
import { SqliteFunctionStore } from "../src/functions/store.ts";

const calls = Number(process.argv[2] ?? 20_000);
const dir = mkdtempSync(join(tmpdir(), "sluice-rt-"));
const file = join(dir, "tag.js");
writeFileSync(file, "export default (e) => { e.tagged = true; };\n");
const db = new Database(":memory:");
const store = new SqliteFunctionStore(db);
const pool = await FunctionPool.start({
  functions: [{ id: "tag", file }],
  connections: [
    {
      id: "con",
      functions: ["tag"],
      options: {},
      env: {},
      source: { id: "web", name: "web" },
      destination: { id: "con", type: "device" },
    },
  ],
  workers: 1,
  maxMemoryMb: 1024,
  defaultTimeoutMs: 5000,
  loadTimeoutMs: 10_000,
  maxEvents: 500,
  allowNetworks: [],
  sandbox: sandboxFor(undefined, []),
  store,
  logger: pino({ level: "silent" }),
});
const call = () =>
  pool.runJson({
    connectionId: "con",
    event: { type: "track", event: "e", userId: "u", properties: { plan: "pro" } },
    headers: {},
    sourceType: "s2s",
    receivedAt: Date.now(),
    retries: 0,
  });

for (let i = 0; i < 2000; i++) await call(); // warm-up
const times: number[] = [];
for (let i = 0; i < calls; i++) {
  const t = performance.now();
  await call();
  times.push(performance.now() - t);
}
times.sort((a, b) => a - b);
const q = (p: number) => times[Math.floor(times.length * p)]!.toFixed(3);
const cpu0 = process.cpuUsage();
const t0 = performance.now();
let done = 0;
await Promise.all(
  Array.from({ length: 64 }, async () => {
    while (done < calls) {
      done++;
      await call();
    }
  }),
);
const secs = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
console.log(
  `sequential: p50 ${q(0.5)} ms, p99 ${q(0.99)} ms over ${calls} calls\n` +
    `64 in flight: ${Math.round(calls / secs)} calls/s, ` +
    `server CPU ${((cpu.user + cpu.system) / calls) | 0} µs per call`,
);
await pool.close();
store.close?.();
db.close();
rmSync(dir, { recursive: true, force: true });
