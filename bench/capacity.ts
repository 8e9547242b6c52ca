/**
 * Capacity: a dedup window holding many keys (50 million by default), against an empty
 * one. The window is filled directly through the dedup store (SqliteDedupStore on the
 * server's data dir, 500 keys per call, as ingestion records them), not through HTTP:
 * 50M events over HTTP would take most of an hour on this machine. Then it measures what
 * issue 11 asks: bytes per key in memory and on disk, the time to check a batch for
 * duplicates, the restart of a server on the full window until it answers (after a clean
 * stop, and after kill -9 under load; target <= 5 s), its RSS (target <= 512 MB), and
 * ingest throughput over HTTP against a server with an empty window (target: within 10%).
 *
 *   bun bench/capacity.ts [--keys 50000000] [--seconds 30] [--rounds 2] [--connections 16]
 *   bun bench/capacity.ts --fill-only DIR [--keys 50000000]   # fill DIR once, then stop
 *   bun bench/capacity.ts --reuse DIR [--seconds 30] [--rounds 2] # measure on a copy of DIR
 *   bun bench/capacity.ts --reuse DIR --only restart [--seconds 30]  # the restarts alone
 *   ... [--entry OTHER/src/main.ts]   # the servers run another checkout (before/after)
 *
 * Filling 50M keys takes 11 minutes on a quiet machine: `--fill-only DIR` writes the
 * filled `dedup.db` and `capacity.json` (the fill's own figures and a sample of its ids,
 * to ask for again as known duplicates) into DIR, and `--reuse DIR` runs every measurement
 * on a fresh copy of it (DIR itself is never written, so it serves any number of runs).
 * The keys carry the time they were filled at: a filled DIR serves for the 24 h window.
 *
 * Loads alternate between the empty and the full window (`rounds` times each), so that
 * a neighbour's load on the machine weighs on both alike.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { SqliteDedupStore } from "../src/dedup/sqlite.ts";
import { cpuSeconds, memoryMb, sampleRss } from "./lib/proc.ts";
import { type BenchServer, startSluice } from "./lib/servers.ts";
import { hasWrk, runWrk } from "./lib/wrk.ts";

const argv = process.argv.slice(2);
const opt = (name: string, fallback: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const path = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] ? resolve(argv[i + 1]!) : undefined;
};
const FILL_ONLY = path("fill-only");
const ENTRY = path("entry");
const REUSE = path("reuse");
/** `--only restart`: with --reuse, the restarts alone (see below). */
const ONLY = argv.includes("--only") ? argv[argv.indexOf("--only") + 1] : undefined;
let KEYS = opt("keys", 50_000_000);
const SECONDS = opt("seconds", 30);
const ROUNDS = opt("rounds", 2);
const CONNECTIONS = opt("connections", 16);
const WINDOW_SECONDS = 86_400; // the default window, as the bench config leaves it
const BATCH = 500;
/** Every this many keys, one is kept to ask for again (true duplicates). */
const SAMPLE_EVERY = 997;

if (!hasWrk()) {
  console.error("capacity: wrk is not installed (Debian/Ubuntu: apt-get install -y wrk)");
  process.exit(2);
}

const log = (msg: string) => console.log(`[capacity] ${msg}`);
const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
let sample: string[] = [];
let fill: Record<string, number> = {};
/** What `--fill-only` leaves beside dedup.db for `--reuse`. */
const SIDECAR = "capacity.json";

/** Random UUIDv4s, cheaper than crypto.randomUUID() one by one. */
function uuids(n: number): string[] {
  const bytes = crypto.getRandomValues(new Uint8Array(16 * n));
  const out: string[] = [];
  for (let k = 0; k < n; k++) {
    const b = bytes.subarray(16 * k, 16 * k + 16);
    b[6] = (b[6]! & 0x0f) | 0x40;
    b[8] = (b[8]! & 0x3f) | 0x80;
    const hex = Buffer.from(b).toString("hex");
    out.push(
      `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`,
    );
  }
  return out;
}

/** Fills `dataDir`'s dedup store with KEYS keys of source `bench`, then closes it. */
async function fillWindow(dataDir: string): Promise<void> {
  const store = await SqliteDedupStore.open(dataDir, { windowSeconds: WINDOW_SECONDS });
  const started = performance.now();
  let lastReport = started;
  for (let done = 0; done < KEYS; done += BATCH) {
    const ids = uuids(Math.min(BATCH, KEYS - done));
    for (let i = 0; i < ids.length; i += SAMPLE_EVERY) sample.push(ids[i]!);
    const seen = await store.seen("bench", ids);
    if (seen.size > 0) throw new Error(`${seen.size} new ids taken for duplicates`);
    // The server's log is empty: the cursor "1:0" is its end, so nothing is replayed.
    store.remember(
      ids.map((messageId) => ({ sourceId: "bench", messageId })),
      "1:0",
    );
    await store.backlog();
    // Let the store's timer and the writer's messages in, as between requests.
    await new Promise((resolve) => setImmediate(resolve));
    if (performance.now() - lastReport > 30_000) {
      lastReport = performance.now();
      const s = store.stats();
      log(
        `${fmt(done + BATCH)} keys, ${fmt((done + BATCH) / ((lastReport - started) / 1000))} keys/s, ` +
          `filter ${fmt(s.memoryBytes / 1e6)} MB, RSS ${fmt(memoryMb(process.pid).rss)} MB`,
      );
    }
  }
  await store.flush();
  fill.seconds = (performance.now() - started) / 1000;
  fill.keysPerSecond = KEYS / fill.seconds;
  fill.memoryBytesPerKey = store.stats().memoryBytes / KEYS;
  const closing = performance.now();
  await store.close();
  fill.closeSeconds = (performance.now() - closing) / 1000;
  fill.diskBytesPerKey = statSync(join(dataDir, "dedup.db")).size / KEYS;
  log(
    `filled ${fmt(KEYS)} keys in ${fmt(fill.seconds)} s (${fmt(fill.keysPerSecond)} keys/s); ` +
      `memory ${fmt(fill.memoryBytesPerKey, 2)} B/key, dedup.db ${fmt(fill.diskBytesPerKey, 1)} B/key; ` +
      `close (filter copied to disk) ${fmt(fill.closeSeconds, 1)} s`,
  );
}

/**
 * Duplicate checks straight against the store on the full window (what one request's
 * lookup costs): known ids from the fill's sample, and new ones.
 */
async function measureChecks(dataDir: string): Promise<void> {
  const opening = performance.now();
  const again = await SqliteDedupStore.open(dataDir, { windowSeconds: WINDOW_SECONDS });
  fill.storeOpenSeconds = (performance.now() - opening) / 1000;
  const time = async (ids: string[]) => {
    const t = performance.now();
    const found = await again.seen("bench", ids);
    return { us: (performance.now() - t) * 1000, found: found.size };
  };
  const dup: number[] = [];
  const fresh: number[] = [];
  for (let round = 0; round < 200; round++) {
    const known = Array.from(
      { length: BATCH },
      () => sample[Math.floor(Math.random() * sample.length)]!,
    );
    const d = await time(known);
    if (d.found !== new Set(known).size) throw new Error(`known ids not found: ${d.found}`);
    dup.push(d.us / BATCH);
    const n = await time(uuids(BATCH));
    if (n.found !== 0) throw new Error("new ids taken for duplicates");
    fresh.push(n.us / BATCH);
  }
  await again.close();
  const pct = (xs: number[], q: number) =>
    [...xs].sort((a, b) => a - b)[Math.floor(q * (xs.length - 1))]!;
  fill.dupP50 = pct(dup, 0.5);
  fill.dupP99 = pct(dup, 0.99);
  fill.newP50 = pct(fresh, 0.5);
  fill.newP99 = pct(fresh, 0.99);
  log(
    `store reopened in ${fmt(fill.storeOpenSeconds, 2)} s; a batch of ${BATCH} checked: ` +
      `known ids ${fmt(fill.dupP50, 2)} µs/id (p50), ${fmt(fill.dupP99, 2)} (p99); ` +
      `new ids ${fmt(fill.newP50, 2)} µs/id (p50), ${fmt(fill.newP99, 2)} (p99)`,
  );
}

interface Load {
  eventsPerSec: number;
  cpuUsPerEvent: number;
  p99Ms: number;
  peakRssMb: number;
}

async function load(server: BenchServer, tag: string): Promise<Load> {
  const rss = sampleRss(server.pid, 200);
  const cpu = cpuSeconds(server.pid);
  const r = await runWrk({
    url: `${server.url}/v1/batch`,
    connections: CONNECTIONS,
    seconds: SECONDS,
    headers: {
      "Content-Type": "application/json",
      Authorization: `Basic ${Buffer.from(`${server.keys.server}:`).toString("base64")}`,
    },
    mode: "uuid",
    tag,
    size: BATCH,
  });
  const events = r.requests * BATCH;
  const secs = r.durationUs / 1e6;
  return {
    eventsPerSec: events / secs,
    cpuUsPerEvent: ((cpuSeconds(server.pid) - cpu) * 1e6) / events,
    p99Ms: r.latencyUs.p99 / 1000,
    peakRssMb: rss.stop(),
  };
}

/** Copies the filled dedup.db of `--reuse` into a new server's data dir. */
async function copyFilled(dataDir: string): Promise<void> {
  const started = performance.now();
  for (const name of readdirSync(REUSE!)) {
    // dedup.db (and its WAL) and the filter copies' folder, dedup-filter/.
    if (!name.startsWith("dedup.db") && name !== "dedup-filter") continue;
    const cp = Bun.spawnSync([
      "cp",
      "-r",
      "--reflink=auto",
      join(REUSE!, name),
      join(dataDir, name),
    ]);
    if (cp.exitCode !== 0) throw new Error(`copying ${name}: ${cp.stderr.toString()}`);
  }
  log(`copied ${REUSE}/dedup.db in ${fmt((performance.now() - started) / 1000, 1)} s`);
}

if (FILL_ONLY) {
  if (existsSync(FILL_ONLY) && readdirSync(FILL_ONLY).length > 0) {
    console.error(`capacity: ${FILL_ONLY} is not empty`);
    process.exit(2);
  }
  mkdirSync(FILL_ONLY, { recursive: true });
  log(`filling a window of ${fmt(KEYS)} keys in ${FILL_ONLY} through the dedup store (not HTTP)`);
  await fillWindow(FILL_ONLY);
  writeFileSync(
    join(FILL_ONLY, SIDECAR),
    JSON.stringify({ keys: KEYS, filledAt: new Date().toISOString(), fill, sample }),
  );
  log(`done: run \`bun bench/capacity.ts --reuse ${FILL_ONLY}\` to measure on it`);
  process.exit(0);
}

if (REUSE) {
  const saved = JSON.parse(readFileSync(join(REUSE, SIDECAR), "utf8")) as {
    keys: number;
    filledAt: string;
    fill: Record<string, number>;
    sample: string[];
  };
  KEYS = saved.keys;
  fill = saved.fill;
  sample = saved.sample;
  log(`reusing the window of ${fmt(KEYS)} keys filled in ${REUSE} at ${saved.filledAt}`);
} else {
  log(`filling a window of ${fmt(KEYS)} keys through the dedup store (not HTTP)`);
}
if (REUSE && ONLY === "restart") {
  // A start on the copy (for a checkout whose format differs from the fill's, its
  // upgrade), a clean stop and start, SECONDS of load, then kill -9 and a start.
  let server = await startSluice({ entry: ENTRY, prepare: copyFilled });
  try {
    log(`first start on the copy: answered in ${fmt(server.startMs / 1000, 2)} s`);
    server = await server.stopAndRestart();
    log(`restart after a clean stop: answered in ${fmt(server.startMs / 1000, 2)} s`);
    const l = await load(server, `capr${Date.now().toString(36)}`);
    log(`load: ${fmt(l.eventsPerSec)} events/s for ${SECONDS} s`);
    server = await server.killAndRestart();
    log(
      `restart after kill -9 under load: answered in ${fmt(server.startMs / 1000, 2)} s; ` +
        `idle RSS ${fmt(server.idleRssMb)} MB`,
    );
  } finally {
    await server.stop();
  }
  process.exit(0);
}

let full = await startSluice({
  entry: ENTRY,
  prepare: async (dataDir) => {
    if (REUSE) await copyFilled(dataDir);
    else await fillWindow(dataDir);
    await measureChecks(dataDir);
  },
});
const empty = await startSluice({ entry: ENTRY });
try {
  log(
    `server on the full window answered ${fmt(full.startMs / 1000, 2)} s after start ` +
      `(empty window: ${fmt(empty.startMs / 1000, 2)} s); idle RSS ${fmt(full.idleRssMb)} MB ` +
      `(empty: ${fmt(empty.idleRssMb)} MB)`,
  );
  const results: { empty: Load[]; full: Load[] } = { empty: [], full: [] };
  for (let round = 0; round < ROUNDS; round++) {
    const tag = `cap${Date.now().toString(36)}${round}`;
    results.empty.push(await load(empty, `${tag}e`));
    results.full.push(await load(full, `${tag}f`));
  }
  const mean = (xs: Load[], k: keyof Load) => xs.reduce((n, x) => n + x[k], 0) / xs.length;
  console.log("| window | events/s | server CPU µs/event | p99 ms | peak RSS MB |");
  console.log("|---|---|---|---|---|");
  for (const [name, xs] of [
    ["empty", results.empty],
    [`${fmt(KEYS)} keys`, results.full],
  ] as const) {
    for (const x of xs) {
      console.log(
        `| ${name} | ${fmt(x.eventsPerSec)} | ${fmt(x.cpuUsPerEvent, 1)} | ${fmt(x.p99Ms, 1)} | ${fmt(x.peakRssMb)} |`,
      );
    }
  }
  const ratio = mean(results.full, "eventsPerSec") / mean(results.empty, "eventsPerSec");
  const peak = Math.max(...results.full.map((x) => x.peakRssMb), full.memoryMb().hwm);
  const cleanStartMs = full.startMs;
  // A crash right after the load: the keys recorded since the last filter copy (at most
  // an eighth of the window) are re-read from disk, then the log tail is replayed.
  full = await full.killAndRestart();
  const crashStartMs = full.startMs;
  log(
    `kill -9 after the load: the server on the full window answered ${fmt(crashStartMs / 1000, 2)} s ` +
      `after start; idle RSS ${fmt(full.idleRssMb)} MB`,
  );
  log(
    `per key: ${fmt(fill.memoryBytesPerKey!, 2)} B in memory, ${fmt(fill.diskBytesPerKey!, 1)} B in dedup.db; ` +
      `duplicate check of a ${BATCH}-id batch: known ids ${fmt(fill.dupP50!, 2)} µs/id p50, ` +
      `${fmt(fill.dupP99!, 2)} p99; new ids ${fmt(fill.newP50!, 2)} p50, ${fmt(fill.newP99!, 2)} p99`,
  );
  const checks: [string, boolean][] = [
    [
      `throughput on the full window is ${fmt(100 * ratio)}% of the empty window's (target >= 90%)`,
      ratio >= 0.9,
    ],
    [
      `restart on the full window after a clean stop ready in ${fmt(cleanStartMs / 1000, 2)} s (target <= 5 s)`,
      cleanStartMs <= 5000,
    ],
    [
      `restart on the full window after kill -9 ready in ${fmt(crashStartMs / 1000, 2)} s (target <= 5 s)`,
      crashStartMs <= 5000,
    ],
    [`peak RSS on the full window ${fmt(peak)} MB (target <= 512 MB)`, peak <= 512],
  ];
  for (const [text, ok] of checks) console.log(`${ok ? "met    " : "MISSED "} ${text}`);
  console.log(
    `CAPACITY_JSON ${JSON.stringify({ keys: KEYS, seconds: SECONDS, fill, startMs: cleanStartMs, crashStartMs, emptyStartMs: empty.startMs, results })}`,
  );
} finally {
  await full.stop();
  await empty.stop();
}
