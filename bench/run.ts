/**
 * sluice's benchmark: each scenario loads sluice and its baseline, one after the other,
 * from a separate wrk process on 127.0.0.1, and prints every sluice figure beside the
 * baseline's. `npm run bench` runs everything and rewrites the table in RESULTS.md.
 *
 *   bun bench/run.ts [--duration S] [--warmup S] [--only a,b] [--no-pin] [--no-write]
 *   bun bench/run.ts --smoke      2 s of one scenario; exits non-zero if it breaks (CI)
 *   bun bench/run.ts --only track --profile DIR   also writes sluice's CPU profile to DIR
 *   bun bench/run.ts --entry OTHER/src/main.ts     loads another checkout of sluice (A/B)
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { writeGzipPool } from "./lib/gzip-pool.ts";
import { type LoadPlan, type Measured, measure } from "./lib/measure.ts";
import { functionsAvailable, preflight } from "./lib/preflight.ts";
import { type HalfRate, type Row, table, targets, writeResults } from "./lib/report.ts";
import { type BenchServer, startBaseline, startSluice } from "./lib/servers.ts";
import { hasWrk } from "./lib/wrk.ts";
import { SCENARIOS, type Scenario } from "./scenarios.ts";

const argv = process.argv.slice(2);
const opt = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const smoke = argv.includes("--smoke");
const seconds = Number(opt("duration") ?? (smoke ? 2 : 10));
const warmupSeconds = Number(opt("warmup") ?? (smoke ? 0 : 3));
const only = (opt("only") ?? (smoke ? "track" : "")).split(",").filter(Boolean);
const profileDir = opt("profile");
const entry = opt("entry");
const pin = !argv.includes("--no-pin") && cpus().length >= 2 && Bun.which("taskset") !== null;
const write = !smoke && only.length === 0 && !argv.includes("--no-write");
/** wrk on CPU 0, the server under test on CPU 1: "wrk taking one core". */
const LOADER_CPU = pin ? 0 : undefined;
const SERVER_CPU = pin ? 1 : undefined;
/** Mean pause between a paced connection's requests, in ms (see halfRate). */
const PACE_MS = 10;

if (!hasWrk()) {
  console.error("bench: wrk is not installed (Debian/Ubuntu: apt-get install -y wrk)");
  process.exit(2);
}

const unknown = only.filter((name) => !SCENARIOS.some((s) => s.name === name));
if (unknown.length > 0) {
  console.error(
    `bench: unknown scenario ${unknown.join(", ")}; known: ${SCENARIOS.map((s) => s.name).join(", ")}`,
  );
  process.exit(2);
}
const scenarios = SCENARIOS.filter((s) => only.length === 0 || only.includes(s.name));
const work = mkdtempSync(join(tmpdir(), "sluice-bench-run-"));
const rows: Row[] = [];
let half: HalfRate | undefined;
let failed = false;

const log = (msg: string) => console.error(`[bench] ${msg}`);

/** The server under load right now, stopped on Ctrl-C too so that none is left behind. */
let current: BenchServer | undefined;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, async () => {
    await current?.stop();
    rmSync(work, { recursive: true, force: true });
    process.exit(130);
  });
}

async function withServer<T>(start: Promise<BenchServer>, fn: (s: BenchServer) => Promise<T>) {
  const server = await start;
  current = server;
  try {
    return await fn(server);
  } finally {
    current = undefined;
    await server.stop();
  }
}

/**
 * Distinct pre-gzipped bodies for the warm-up and the measured run (see gzip-pool.ts),
 * as many as sluice takes at its plain batch-500 rate plus half again. The baseline
 * does not deduplicate, so it may go round the pool (repeats cost it the same).
 */
function gzipPools(scenario: Scenario): LoadPlan["pools"] {
  if (scenario.mode !== "gzip") return undefined;
  const batchRate = rows.find((r) => r.scenario.name === "batch-500")?.sluice?.reqPerSec;
  const perSecond = Math.min(2_000, 1.5 * (batchRate ?? 300));
  const count = (s: number) => Math.max(100, Math.ceil(perSecond * s));
  const warmup = join(work, "pool-warmup.gz");
  const measured = join(work, "pool-measure.gz");
  log(`generating ${count(warmupSeconds) + count(seconds)} distinct gzip bodies`);
  writeGzipPool(warmup, count(warmupSeconds), scenario.size);
  writeGzipPool(measured, count(seconds), scenario.size);
  return { warmup, measure: measured };
}

/** p99 of single events at half the max rate: wrk with paced connections (no wrk2 in Debian). */
async function halfRate(server: BenchServer, scenario: Scenario, max: number): Promise<HalfRate> {
  const targetRate = max / 2;
  const plan = (connections: number, s: number): LoadPlan => ({
    warmupSeconds: 0,
    seconds: s,
    loaderCpu: LOADER_CPU,
    pauseMs: PACE_MS,
    connections,
  });
  // Each connection sends about once per (pause + latency); calibrate once, then measure.
  let connections = Math.max(1, Math.round((targetRate * (PACE_MS + 0.5)) / 1000));
  const probe = await measure(server, scenario, plan(connections, 3));
  connections = Math.max(1, Math.round((connections * targetRate) / probe.reqPerSec));
  const measured = await measure(server, scenario, plan(connections, seconds));
  return { targetRate, connections, measured };
}

async function runScenario(scenario: Scenario): Promise<Row> {
  const plan: LoadPlan = {
    warmupSeconds,
    seconds,
    loaderCpu: LOADER_CPU,
    pools: gzipPools(scenario),
  };
  const row: Row = { scenario };
  if (scenario.functions) {
    const available = await withServer(startSluice({ withFunctions: true }), (s) =>
      functionsAvailable(s, scenario),
    );
    if (!available) {
      log(`${scenario.name}: POST /api/funcs/:conId does not exist yet; pending`);
      return { ...row, pending: "pending: POST /api/funcs/:conId not built yet" };
    }
  }
  log(`${scenario.name}: baseline (${scenario.baseline})`);
  row.baseline = await withServer(startBaseline(scenario.baseline, { cpu: SERVER_CPU }), (s) =>
    measure(s, scenario, plan),
  );
  log(`${scenario.name}: sluice`);
  row.sluice = await withServer(
    startSluice({ cpu: SERVER_CPU, withFunctions: scenario.functions, profileDir, entry }),
    async (s) => {
      await preflight(s, scenario);
      const m = await measure(s, scenario, plan);
      if (scenario.name === "track" && !smoke) {
        log(`${scenario.name}: paced at half of ${Math.round(m.reqPerSec)} req/s`);
        half = await halfRate(s, scenario, m.reqPerSec);
      }
      return m;
    },
  );
  return row;
}

function broken(m: Measured | undefined, scenario: Scenario): boolean {
  if (!m) return false;
  const expected = scenario.expect === 429 ? m.requests : 0;
  return (
    m.requests === 0 ||
    m.socketErrors > 0 ||
    Math.abs(m.statusErrors - expected) > Math.max(5, m.requests * 0.01)
  );
}

try {
  for (const scenario of scenarios) {
    const row = await runScenario(scenario);
    rows.push(row);
    if (broken(row.sluice, scenario) || broken(row.baseline, { ...scenario, expect: 200 })) {
      failed = true;
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

const cpuModel = cpus()[0]?.model ?? "unknown CPU";
const wrkVersion = Bun.spawnSync(["wrk", "-v"]).stdout.toString().split("\n")[0]!.split(" [")[0];
const kernel = readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
const block = [
  `Run ${new Date().toISOString()} on ${cpus().length} cores (${cpuModel}), Linux ${kernel},`,
  `Bun ${Bun.version}, ${wrkVersion}. Command: \`${["bun bench/run.ts", ...argv].join(" ")}\`.`,
  `${seconds} s measured after ${warmupSeconds} s of warm-up per run; wrk ${pin ? "pinned to CPU 0, server to CPU 1" : "and server unpinned"}.`,
  "",
  table(rows, half),
  "",
  "Targets:",
  "",
  ...targets(rows, half),
].join("\n");
console.log(block);
if (write) {
  const results = join(import.meta.dir, "RESULTS.md");
  writeResults(results, block);
  // Biome formats Markdown too (aligned tables): keep `npm run check` clean after a run.
  const biome = join(import.meta.dir, "..", "node_modules", ".bin", "biome");
  if (existsSync(biome)) Bun.spawnSync([biome, "format", "--write", results]);
  log("bench/RESULTS.md updated");
}
if (argv.includes("--json")) console.log(`BENCH_JSON ${JSON.stringify({ rows, half })}`);
process.exit(failed ? 1 : 0);
