/**
 * A 500-event batch through sluice's own batch path, in process (issue 11, fifth
 * session): the body's JSON.parse, then `IngestService.ingest` (validation, enrichment,
 * serialisation, the in-flight claims) and the file log's `append` (framing and
 * cursors, through the tree's own `FileLogStream`), with a segment writer and a dedup
 * store that answer at once (no disk, no filter), so that only this work is timed.
 * Two trees interleaved: the machine's load moves both alike.
 *
 *   bun bench/experiments/ingest-batch.ts [--before OTHER/src] [--rounds 10] [--ms 1000]
 *       [--size 500] [--key server|browser]
 *
 * The events are bench/lua/event.json.tmpl with fresh messageIds, in a batch with a
 * `sentAt` as the bench's wrk script sends it. Measured as the process's CPU time (all
 * threads: the JIT's and the collector's too) per event, and the heap's growth per
 * event between collections is not: see the RSS section of bench/RESULTS.md.
 */
import { join, resolve } from "node:path";
import pino from "pino";
import { batchBodies } from "../lib/batch-body.ts";

const argv = process.argv.slice(2);
const opt = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const rounds = Number(opt("rounds") ?? 10);
const ms = Number(opt("ms") ?? 1000);
const size = Number(opt("size") ?? 500);
const keyType = (opt("key") ?? "server") as "browser" | "server";
const trees: [string, string][] = [["this tree", join(import.meta.dir, "..", "..", "src")]];
if (opt("before")) trees.unshift(["before", resolve(opt("before")!)]);

const key = {
  source: { id: "bench", rateLimit: { eventsPerSecond: 1e9, burst: 1e9 } },
  keyId: "k1",
  type: keyType,
} as never;
const none = new Set<string>();
const dedup = { seen: () => Promise.resolve(none), remember: () => undefined } as never;
/** The segment writer: resolves at once with where the frames would end. */
let offset = 0;
const fileLog = {
  appendFramed(framed: { bytes: Uint8Array }) {
    offset += framed.bytes.byteLength;
    return Promise.resolve({ segment: 1, offset });
  },
} as never;

const services = await Promise.all(
  trees.map(async ([name, dir]) => {
    const { IngestService } = await import(join(dir, "ingest", "service.ts"));
    const { FileLogStream } = await import(join(dir, "log", "file-stream.ts"));
    return {
      name,
      service: new IngestService({
        log: new FileLogStream(fileLog, {} as never),
        dedup,
        logger: pino({ level: "silent" }),
        maxEventBytes: 32768,
      }),
      samples: [] as number[],
    };
  }),
);

const body = batchBodies(size);

async function run(service: { ingest(input: unknown): Promise<unknown> }, until: number) {
  let events = 0;
  while (performance.now() < until) {
    const parsed = JSON.parse(body()) as {
      batch: unknown[];
      sentAt: string;
      context?: Record<string, unknown>;
    };
    await service.ingest({
      key,
      items: parsed.batch,
      receivedAt: Date.now(),
      requestIp: "203.0.113.7",
      userAgent: "wrk",
      batch: { context: parsed.context, integrations: undefined, sentAt: parsed.sentAt },
    });
    events += size;
  }
  return events;
}

/** The body's making is not the server's work: its CPU per event, measured alone. */
function bodyCost(until: number): number {
  let events = 0;
  const cpu = process.cpuUsage();
  while (performance.now() < until) {
    if (body().length === 0) throw new Error("empty");
    events += size;
  }
  const used = process.cpuUsage(cpu);
  return (used.user + used.system) / events;
}

for (const s of services) await run(s.service, performance.now() + ms); // warm-up
const making: number[] = [];
for (let r = 0; r < rounds; r++) {
  making.push(bodyCost(performance.now() + ms / 4));
  for (const s of services) {
    // Process CPU, not wall time: on a shared machine this process waits its turn.
    const cpu = process.cpuUsage();
    const events = await run(s.service, performance.now() + ms);
    const used = process.cpuUsage(cpu);
    s.samples.push((used.user + used.system) / events);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(
  `making the body (not the server's; included below): ${median(making).toFixed(2)} µs/event`,
);
for (const s of services) {
  console.log(
    `${s.name}: CPU µs per event of a ${size}-event batch (JSON.parse of the body, ingest, framing), median ` +
      `${median(s.samples).toFixed(2)}, rounds ${s.samples.map((x) => x.toFixed(2)).join(" ")}`,
  );
}
