/**
 * Soak: sustained 500-event batches with random UUIDv4 messageIds at full speed, as
 * Segment's and RudderStack's server SDKs send them, for as long as asked. Every
 * interval it prints the server's throughput, CPU per event, bytes written to disk per
 * event (/proc/<pid>/io write_bytes: the event log, SQLite and its WAL together), the
 * keys in the dedup window and RSS, then checks issue 11's targets: the last interval
 * keeps >= 90% of the first one's throughput, CPU and bytes per event stay within 20%,
 * and bytes written per event stay <= 2x the event's own size in the log.
 *
 * The event's own size in the log is measured once, before the load: one batch of
 * `--batch` events shaped as wrk sends them (bench/lua/event.json.tmpl, random UUIDv4
 * ids) is posted and the growth of `sluice_log_bytes` divided by its events, so it is
 * the framed record as written (frame, enrichment and all). Dividing by the log's size
 * on disk instead would be wrong once retention (`log.retention.maxBytes`) deletes old
 * segments: the log then stops growing while events keep being written.
 *
 *   bun bench/soak.ts [--minutes 10] [--interval 60] [--warmup 15] [--connections 16]
 *                     [--batch 500] [--entry OTHER/src/main.ts] [--pin] [--threads]
 *
 * The first `--warmup` seconds of load (JIT compilation, first allocations) are not
 * sampled; the window fills from the start.
 *
 * `--threads` also prints, every interval, each thread of the server with its CPU per
 * event in user and kernel mode and its minor page faults per event (where the CPU per
 * event goes as the window grows: event loop, dedup writer, JIT, GC helpers).
 *
 * `--entry` runs another checkout of sluice (a before/after comparison). `--pin` puts
 * the server on CPU 1 and wrk on CPU 0; by default both float, as on a shared machine.
 */
import { readFileSync } from "node:fs";
import { EVENT_TEMPLATE } from "./lib/gzip-pool.ts";
import {
  cpuSeconds,
  machineBusySeconds,
  memoryMb,
  processTree,
  type ThreadSample,
  threadSamples,
} from "./lib/proc.ts";
import { startSluice } from "./lib/servers.ts";
import { hasWrk, runWrk } from "./lib/wrk.ts";

const argv = process.argv.slice(2);
const opt = (name: string, fallback: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const entryAt = argv.indexOf("--entry");
const entry = entryAt >= 0 ? argv[entryAt + 1] : undefined;
const minutes = opt("minutes", 10);
const interval = opt("interval", 60);
const warmup = opt("warmup", 15);
const connections = opt("connections", 16);
const batch = opt("batch", 500);
const pin = argv.includes("--pin");
const perThread = argv.includes("--threads");

if (!hasWrk()) {
  console.error("soak: wrk is not installed (Debian/Ubuntu: apt-get install -y wrk)");
  process.exit(2);
}

/** Bytes the process tree has caused to be written to storage (page cache writeback included). */
function writeBytes(pid: number): number {
  let total = 0;
  for (const p of processTree(pid)) {
    try {
      const io = readFileSync(`/proc/${p}/io`, "utf8");
      total += Number(/^write_bytes:\s+(\d+)/m.exec(io)?.[1] ?? 0);
    } catch {
      // exited while we looked
    }
  }
  return total;
}

/** One sample of the server's own counters (from /metrics) and of its process. */
interface Sample {
  at: number;
  accepted: number;
  duplicates: number;
  logBytes: number;
  dedupKeys: number | undefined;
  cpu: number;
  busy: number;
  written: number;
  rssMb: number;
  threads: Map<string, ThreadSample>;
}

async function sample(url: string, pid: number): Promise<Sample> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const sum = (re: RegExp) => {
    let n = 0;
    for (const m of text.matchAll(re)) n += Number(m[1]);
    return n;
  };
  const keys = /^sluice_dedup_keys (\S+)$/m.exec(text);
  return {
    at: performance.now(),
    accepted: sum(/^sluice_events_total\{[^}]*outcome="accepted"[^}]*\} (\S+)$/gm),
    duplicates: sum(/^sluice_events_total\{[^}]*outcome="duplicate"[^}]*\} (\S+)$/gm),
    logBytes: sum(/^sluice_log_bytes (\S+)$/gm),
    dedupKeys: keys ? Number(keys[1]) : undefined,
    cpu: cpuSeconds(pid),
    busy: machineBusySeconds(),
    written: writeBytes(pid),
    rssMb: memoryMb(pid).rss,
    threads: perThread ? threadSamples(pid) : new Map(),
  };
}

/** Per thread of the server, CPU µs per event (user + kernel) and minor faults per event. */
function printThreads(prev: Sample, next: Sample, events: number): void {
  const rows = [...next.threads]
    .map(([key, t]) => {
      const p = prev.threads.get(key);
      return {
        key,
        user: (t.user - (p?.user ?? 0)) * 1e6,
        system: (t.system - (p?.system ?? 0)) * 1e6,
        faults: t.minorFaults - (p?.minorFaults ?? 0),
      };
    })
    .filter((r) => r.user + r.system > 0)
    .sort((a, b) => b.user + b.system - (a.user + a.system));
  for (const r of rows) {
    console.log(
      `    ${r.key.padEnd(26)} ${fmt((r.user + r.system) / events, 2).padStart(6)} µs/event ` +
        `(user ${fmt(r.user / events, 2)}, sys ${fmt(r.system / events, 2)}), ` +
        `${fmt(r.faults / events, 3)} minor faults/event`,
    );
  }
}

interface Row {
  minute: number;
  eventsPerSec: number;
  cpuUsPerEvent: number;
  writtenPerEvent: number;
  logBytesPerEvent: number;
  keys: number;
  rssMb: number;
  otherCpu: number;
}

const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

const server = await startSluice({ entry, cpu: pin ? 1 : undefined });
const stopOnSignal = async () => {
  await server.stop();
  process.exit(130);
};
process.on("SIGINT", stopOnSignal);
process.on("SIGTERM", stopOnSignal);

/**
 * Bytes one event of the load takes in the event log: a batch posted alone, the log's
 * growth divided by its events (the log's writes are durable before the 2xx).
 */
async function eventLogBytes(url: string, writeKey: string): Promise<number> {
  const [pre, post] = readFileSync(EVENT_TEMPLATE, "utf8").trim().split("@ID@") as [string, string];
  const events = Array.from({ length: batch }, () => `${pre}${crypto.randomUUID()}${post}`);
  const logBytes = async () =>
    Number(/^sluice_log_bytes (\S+)$/m.exec(await (await fetch(`${url}/metrics`)).text())?.[1]);
  const before = await logBytes();
  const res = await fetch(`${url}/v1/batch`, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Authorization: `Basic ${Buffer.from(`${writeKey}:`).toString("base64")}`,
    },
    body: `{"sentAt":"2025-06-01T12:00:01.000Z","batch":[${events.join(",")}]}`,
  });
  if (!res.ok) throw new Error(`soak: the sample batch got ${res.status}: ${await res.text()}`);
  const grown = (await logBytes()) - before;
  if (!(grown > 0)) throw new Error("soak: sluice_log_bytes did not grow with the sample batch");
  return grown / batch;
}

const rows: Row[] = [];
let failed = false;
try {
  const eventBytes = await eventLogBytes(server.url, server.keys.server);
  console.log(
    `an event of the load takes ${fmt(eventBytes)} B in the log (a ${batch}-event batch ` +
      "posted alone: growth of sluice_log_bytes per event); bytes written per event are " +
      "compared with this, not with the log's size on disk, which retention cuts",
  );
  const seconds = Math.round(minutes * 60);
  console.log(
    `soak: ${minutes} min of POST /v1/batch (${batch} events, random UUIDv4 messageIds), ` +
      `wrk -t1 -c${connections}, ${pin ? "server on CPU 1, wrk on CPU 0" : "unpinned"}, ` +
      `sampled every ${interval} s after ${warmup} s of warm-up${entry ? `, entry ${entry}` : ""}`,
  );
  console.log(
    "| interval | events/s | server CPU µs/event | bytes written/event | log size/event | keys in window | RSS MB | other CPU |",
  );
  console.log("|---|---|---|---|---|---|---|---|");
  const load = runWrk({
    url: `${server.url}/v1/batch`,
    connections,
    // A little longer than sampled, so that the last sample is taken under load.
    seconds: warmup + seconds + 10,
    headers: {
      "Content-Type": "application/json",
      Authorization: `Basic ${Buffer.from(`${server.keys.server}:`).toString("base64")}`,
    },
    mode: "uuid",
    tag: `soak${Date.now().toString(36)}`,
    size: batch,
    cpu: pin ? 0 : undefined,
  });
  let done = false;
  void load.finally(() => {
    done = true;
  });
  await Bun.sleep(warmup * 1000);
  let prev = await sample(server.url, server.pid);
  const start = prev.at;
  for (let i = 1; i * interval <= seconds && !done; i++) {
    // On a fixed schedule: a slow scrape does not push the later samples back.
    const until = start + i * interval * 1000;
    while (!done && performance.now() < until) await Bun.sleep(200);
    if (done) break;
    const next = await sample(server.url, server.pid);
    const secs = (next.at - prev.at) / 1000;
    const events = next.accepted + next.duplicates - (prev.accepted + prev.duplicates);
    const cpu = next.cpu - prev.cpu;
    const row: Row = {
      minute: (i * interval) / 60,
      eventsPerSec: events / secs,
      cpuUsPerEvent: (cpu * 1e6) / events,
      writtenPerEvent: (next.written - prev.written) / events,
      // The log's size on disk over events so far: falls once retention deletes segments
      // (shown, not used for the target; see eventLogBytes).
      logBytesPerEvent: next.logBytes / Math.max(1, next.accepted),
      keys: next.dedupKeys ?? next.accepted,
      rssMb: next.rssMb,
      otherCpu: Math.max(0, (next.busy - prev.busy - cpu) / secs),
    };
    rows.push(row);
    console.log(
      `| ${fmt(row.minute, 2)} min | ${fmt(row.eventsPerSec)} | ${fmt(row.cpuUsPerEvent, 1)} | ` +
        `${fmt(row.writtenPerEvent)} | ${fmt(row.logBytesPerEvent)} | ${fmt(row.keys)} | ` +
        `${fmt(row.rssMb)} | ${fmt(row.otherCpu, 2)} cores |`,
    );
    if (perThread) printThreads(prev, next, events);
    prev = next;
  }
  const result = await load;
  if (result.errors.status > 0 || result.errors.timeout > 0) {
    console.log(`wrk: ${result.errors.status} error statuses, ${result.errors.timeout} timeouts`);
    failed = true;
  }
  console.log(
    `latency over the whole run: p50 ${fmt(result.latencyUs.p50 / 1000, 1)} ms, ` +
      `p99 ${fmt(result.latencyUs.p99 / 1000, 1)} ms, max ${fmt(result.latencyUs.max / 1000, 1)} ms`,
  );
  const first = rows[0];
  const last = rows.at(-1);
  if (first && last && rows.length >= 2) {
    const within = (a: number, b: number) => Math.abs(b - a) / a <= 0.2;
    const checks: [string, boolean][] = [
      [
        `last interval keeps ${fmt((100 * last.eventsPerSec) / first.eventsPerSec)}% of the first's throughput (target >= 90%)`,
        last.eventsPerSec >= 0.9 * first.eventsPerSec,
      ],
      [
        `CPU per event ${fmt(first.cpuUsPerEvent, 1)} -> ${fmt(last.cpuUsPerEvent, 1)} µs (target: within 20%)`,
        within(first.cpuUsPerEvent, last.cpuUsPerEvent),
      ],
      [
        `bytes written per event ${fmt(first.writtenPerEvent)} -> ${fmt(last.writtenPerEvent)} (target: within 20%)`,
        within(first.writtenPerEvent, last.writtenPerEvent),
      ],
      [
        `bytes written per event at most ${fmt(Math.max(...rows.map((r) => r.writtenPerEvent / eventBytes)), 2)}x ` +
          `the event's ${fmt(eventBytes)} B in the log (target <= 2x)`,
        rows.every((r) => r.writtenPerEvent <= 2 * eventBytes),
      ],
    ];
    for (const [text, ok] of checks) {
      console.log(`${ok ? "met    " : "MISSED "} ${text}`);
      if (!ok) failed = true;
    }
  }
  console.log(
    `SOAK_JSON ${JSON.stringify({ minutes, interval, warmup, connections, batch, pin, eventBytes, rows })}`,
  );
} finally {
  await server.stop();
}
process.exit(failed ? 1 : 0);
