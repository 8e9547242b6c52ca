/**
 * What one 500-event batch allocates, by kind, measured by keeping N batches' worth of
 * each kind alive and reading the process's memory before and after (issue 11, sixth
 * session): RSS (/proc), JSC's heap (`bun:jsc` heapStats: its size, cells and the extra memory
 * it was told of), `process.memoryUsage()` external / arrayBuffers. A full collection
 * runs before each reading, so what is read is what the kept objects hold; the same
 * bytes, let go, are what waits for a sweep under load.
 *
 *   bun bench/experiments/batch-alloc.ts [--src OTHER/src] [--batches 100] [--size 500]
 *       [--kind body|parsed|stored|records|frames|all]
 *
 * Kinds, each kept for every batch (one process per kind: `--kind all` runs them as
 * child processes one after the other):
 * - `body`: the request body's bytes (a Buffer of the text as the bench sends it);
 * - `parsed`: `JSON.parse` of the body (what the handler gets from `request.json()`);
 * - `stored`: the enriched events' JSON texts (`JSON.stringify`, the log's payloads);
 * - `records`: the records handed to the log and the dedup store (texts and keys);
 * - `frames`: the frame buffer a batch's append makes (`encodeFrames`).
 * The path is the tree's own `IngestService` with its `FileLogStream` framing, over a
 * segment writer and a dedup store that answer at once (as ingest-batch.ts).
 */
import { heapStats } from "bun:jsc";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import pino from "pino";
import { batchBodies } from "../lib/batch-body.ts";

const argv = process.argv.slice(2);
const opt = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const src = resolve(opt("src") ?? join(import.meta.dir, "..", "..", "src"));
const batches = Number(opt("batches") ?? 100);
const size = Number(opt("size") ?? 500);
const kind = opt("kind") ?? "all";
const KINDS = ["none", "body", "parsed", "stored", "records", "frames"];

if (kind === "all") {
  for (const k of KINDS) {
    const child = Bun.spawnSync(
      [process.execPath, import.meta.path, ...argv.filter((a) => a !== "all"), "--kind", k],
      { stdout: "inherit", stderr: "inherit" },
    );
    if (child.exitCode !== 0) process.exit(child.exitCode ?? 1);
  }
  process.exit(0);
}

const key = {
  source: { id: "bench", rateLimit: { eventsPerSecond: 1e9, burst: 1e9 } },
  keyId: "k1",
  type: "server",
} as never;
const none = new Set<string>();
let lastRecords: unknown[] = [];
const dedup = {
  seen: () => Promise.resolve(none),
  remember: (records: unknown[]) => {
    lastRecords = records;
    return undefined;
  },
} as never;
let offset = 0;
let lastFramed: { bytes: Uint8Array; sizes: number[] } | undefined;
const fileLog = {
  appendFramed(framed: { bytes: Uint8Array; sizes: number[] }) {
    lastFramed = framed;
    offset += framed.bytes.byteLength;
    return Promise.resolve({ segment: 1, offset });
  },
} as never;
const { IngestService } = await import(join(src, "ingest", "service.ts"));
const { FileLogStream } = await import(join(src, "log", "file-stream.ts"));
const service = new IngestService({
  log: new FileLogStream(fileLog, {} as never),
  dedup,
  logger: pino({ level: "silent" }),
  maxEventBytes: 32768,
});

const body = batchBodies(size);

async function ingest(text: string) {
  const parsed = JSON.parse(text) as { batch: unknown[]; sentAt: string };
  await service.ingest({
    key,
    items: parsed.batch,
    receivedAt: Date.now(),
    requestIp: "203.0.113.7",
    userAgent: "wrk",
    batch: { context: undefined, integrations: undefined, sentAt: parsed.sentAt },
  });
  return parsed;
}

function reading() {
  Bun.gc(true);
  Bun.gc(true);
  const h = heapStats();
  const m = process.memoryUsage();
  const rss = Number(readFileSync("/proc/self/statm", "utf8").split(" ")[1]) * 4096;
  return {
    rss,
    heap: h.heapSize,
    extra: h.extraMemorySize,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
  };
}

// Warm-up: the JIT and the caches (sources' and types' UTF-8) settle first.
for (let i = 0; i < 50; i++) await ingest(body());
const texts: string[] = [];
for (let i = 0; i < batches; i++) texts.push(body());
let bodyChars = 0;
for (const t of texts) bodyChars += t.length;

const kept: unknown[] = [];
const before = reading();
for (const text of texts) {
  if (kind === "body") kept.push(Buffer.from(text));
  else if (kind === "parsed") kept.push(JSON.parse(text));
  else if (kind !== "none") {
    await ingest(text);
    if (kind === "stored") kept.push((lastRecords as { payload: string }[]).map((r) => r.payload));
    else if (kind === "records") kept.push(lastRecords);
    else if (kind === "frames") kept.push(lastFramed);
  }
}
const after = reading();
const kB = (bytes: number) => (bytes / batches / 1024).toFixed(1).padStart(7);
let detail = "";
if (kind === "frames") {
  const f = kept as { bytes: Uint8Array }[];
  const used = f.reduce((s, x) => s + x.bytes.byteLength, 0);
  const capacity = f.reduce((s, x) => s + x.bytes.buffer.byteLength, 0);
  detail = `, frame bytes used ${kB(used)} kB of a ${kB(capacity)} kB buffer`;
}
if (kind === "stored") {
  const t = kept as string[][];
  detail = `, text chars ${kB(t.reduce((s, x) => s + x.reduce((a, y) => a + y.length, 0), 0))} k`;
}
console.log(
  `${kind.padEnd(8)} per batch: RSS ${kB(after.rss - before.rss)} kB, JSC heap size (cells and extra) ${kB(after.heap - before.heap)} kB, ` +
    `JSC extra memory ${kB(after.extra - before.extra)} kB, external ${kB(after.external - before.external)} kB, ` +
    `arrayBuffers ${kB(after.arrayBuffers - before.arrayBuffers)} kB (body ${kB(bodyChars)} k chars${detail})`,
);
if (kept.length !== (kind === "none" ? 0 : batches)) throw new Error("kept");
