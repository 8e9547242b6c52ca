/**
 * `IngestService.ingest` for one event, in process (issue 11): validation, enrichment,
 * serialisation, the in-flight claims, with a log and a dedup store that answer at once
 * (no disk, no filter), so that only ingest's own work is timed. Two trees
 * interleaved: the machine's load moves both alike.
 *
 *   bun bench/experiments/ingest-single.ts [--before OTHER/src] [--rounds 8] [--ms 1000]
 *       [--key browser|server]
 *
 * The event is bench/lua/event.json.tmpl (it has a context of its own) with a fresh
 * messageId per call; receivedAt is Date.now(), as the routes give it. Measured as the
 * process's CPU time (all threads: the JIT's and the collector's too) per call.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import pino from "pino";

const argv = process.argv.slice(2);
const opt = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const rounds = Number(opt("rounds") ?? 8);
const ms = Number(opt("ms") ?? 1000);
const keyType = (opt("key") ?? "browser") as "browser" | "server";
const trees: [string, string][] = [["this tree", join(import.meta.dir, "..", "..", "src")]];
if (opt("before")) trees.unshift(["before", resolve(opt("before")!)]);

const template = readFileSync(join(import.meta.dir, "..", "lua", "event.json.tmpl"), "utf8");
const [head, tail] = template.split("@ID@") as [string, string];
const key = {
  source: { id: "bench", rateLimit: { eventsPerSecond: 1e9, burst: 1e9 } },
  keyId: "k1",
  type: keyType,
} as never;
const cursor = ["1:100"];
const log = {
  append: () => Promise.resolve(cursor),
  appendLast: () => Promise.resolve(cursor[0]),
  healthy: () => true,
};
const none = new Set<string>();
const dedup = { seen: () => Promise.resolve(none), remember: () => undefined } as never;

const services = await Promise.all(
  trees.map(async ([name, dir]) => {
    const { IngestService } = await import(join(dir, "ingest", "service.ts"));
    return {
      name,
      service: new IngestService({
        log,
        dedup,
        logger: pino({ level: "silent" }),
        maxEventBytes: 32768,
      }),
      samples: [] as number[],
    };
  }),
);

let n = 0;
async function run(service: { ingest(input: unknown): Promise<unknown> }, until: number) {
  let calls = 0;
  while (performance.now() < until) {
    for (let i = 0; i < 100; i++) {
      const text = `${head}m-${++n}${tail}`;
      await service.ingest({
        key,
        items: [JSON.parse(text)],
        itemBytes: [text.length],
        type: "track",
        receivedAt: Date.now(),
        requestIp: "203.0.113.7",
        userAgent: "wrk",
      });
    }
    calls += 100;
  }
  return calls;
}

for (const s of services) await run(s.service, performance.now() + ms); // warm-up
for (let r = 0; r < rounds; r++) {
  for (const s of services) {
    // Process CPU, not wall time: on a shared machine this process waits its turn.
    const cpu = process.cpuUsage();
    const calls = await run(s.service, performance.now() + ms);
    const used = process.cpuUsage(cpu);
    s.samples.push((used.user + used.system) / calls);
  }
}
for (const s of services) {
  const sorted = [...s.samples].sort((a, b) => a - b);
  console.log(
    `${s.name}: CPU µs per single-event ingest (incl. JSON.parse of the body), median ` +
      `${sorted[Math.floor(sorted.length / 2)]!.toFixed(2)}, rounds ${s.samples.map((x) => x.toFixed(2)).join(" ")}`,
  );
}
