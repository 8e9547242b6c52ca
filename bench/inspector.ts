/**
 * The inspector's costs (issue 16), in two parts.
 *
 *   bun bench/inspector.ts ingest [--only track,batch-100] [--duration S] [--rounds N] [--before PATH/src/main.ts]
 *     Ingest with the inspector as it ships (search index on, nobody watching), with one
 *     live client reading the SSE stream, and with the search index off; `--before`
 *     adds a checkout from before the inspector. Rounds alternate the variants; the
 *     median of each is reported. Server pinned to CPU 1, wrk to CPU 0 (as run.ts).
 *
 *   bun bench/inspector.ts search [--events N] [--queries Q]
 *     Builds a real file log of N events (default 1,000,000) and its search index (the
 *     indexer's own code, run to completion in this thread), then times searches through
 *     a read-only view as the server runs them: an exact messageId, a userId, an event
 *     name with a source, the newest events. 10M events: ~4 GiB log + ~2 GiB index in
 *     the temp dir, ~10 minutes on a quiet machine.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { SearchIndexer } from "../src/admin/search/indexer.ts";
import { eventLogSource } from "../src/admin/search/log-source.ts";
import { EventSearch } from "../src/admin/search/search.ts";
import { IndexShards } from "../src/admin/search/shards.ts";
import { FileEventLog } from "../src/log/file/file-log.ts";
import { type Measured, measure } from "./lib/measure.ts";
import { startSluice } from "./lib/servers.ts";
import { SCENARIOS } from "./scenarios.ts";

const argv = process.argv.slice(2);
const opt = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const pin = cpus().length >= 2 && Bun.which("taskset") !== null;

async function ingest() {
  const seconds = Number(opt("duration") ?? 8);
  const rounds = Number(opt("rounds") ?? 3);
  const only = (opt("only") ?? "track,batch-100").split(",");
  const before = opt("before");
  const variants: {
    name: string;
    config?: Record<string, unknown>;
    watch?: boolean;
    entry?: string;
  }[] = [
    ...(before ? [{ name: "before the inspector", entry: before }] : []),
    { name: "index off, nobody watching", config: { admin: { searchIndex: false } } },
    { name: "index on, nobody watching (default)" },
    { name: "index on, one live client", watch: true },
  ];
  for (const scenario of SCENARIOS.filter((s) => only.includes(s.name))) {
    const results = new Map<string, Measured[]>();
    for (let round = 0; round < rounds; round++) {
      for (const v of round % 2 === 0 ? variants : [...variants].reverse()) {
        const server = await startSluice({
          cpu: pin ? 1 : undefined,
          config: v.config,
          entry: v.entry,
        });
        const abort = new AbortController();
        let frames = 0;
        try {
          if (v.watch) {
            const res = await fetch(`${server.url}/admin/api/live`, { signal: abort.signal });
            void (async () => {
              try {
                for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
                  frames += chunk.byteLength > 0 ? 1 : 0;
                }
              } catch {}
            })();
          }
          const m = await measure(server, scenario, {
            warmupSeconds: 2,
            seconds,
            loaderCpu: pin ? 0 : undefined,
          });
          results.set(v.name, [...(results.get(v.name) ?? []), m]);
          console.error(
            `[inspector] ${scenario.name} | ${v.name} | round ${round + 1}: ${Math.round(m.eventsPerSec)} events/s, p99 ${m.p99Ms.toFixed(1)} ms, other CPU ${Math.round(m.otherCpu * 100)}%${v.watch ? `, ${frames} chunks read` : ""}`,
          );
        } finally {
          abort.abort();
          await server.stop();
        }
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const base = median((results.get(variants[0]!.name) ?? []).map((m) => m.eventsPerSec));
    console.log(`\n${scenario.name} (${seconds} s runs, ${rounds} rounds, median):`);
    console.log("| variant | events/s | p50 / p99 ms | vs first |");
    console.log("| --- | ---: | ---: | ---: |");
    for (const v of variants) {
      const ms = results.get(v.name) ?? [];
      const eps = median(ms.map((m) => m.eventsPerSec));
      const p50 = median(ms.map((m) => m.p50Ms));
      const p99 = median(ms.map((m) => m.p99Ms));
      console.log(
        `| ${v.name} | ${Math.round(eps).toLocaleString("en")} | ${p50.toFixed(2)} / ${p99.toFixed(1)} | ${((eps / base - 1) * 100).toFixed(1)}% |`,
      );
    }
  }
}

async function search() {
  const events = Number(opt("events") ?? 1_000_000);
  const queries = Number(opt("queries") ?? 200);
  const dir = mkdtempSync(join(tmpdir(), "sluice-bench-search-"));
  const logger = pino({ level: "silent" });
  try {
    const log = await FileEventLog.open({ dir: join(dir, "log"), segmentBytes: 64 << 20, logger });
    const encoder = new TextEncoder();
    const ids: string[] = [];
    let started = performance.now();
    let batch: Uint8Array[] = [];
    const t0 = Date.now() - events;
    for (let i = 0; i < events; i++) {
      const messageId = crypto.randomUUID();
      if (i % Math.ceil(events / 1000) === 0) ids.push(messageId);
      const event = {
        type: "track",
        event: `Event ${i % 50}`,
        userId: `user-${i % 100_000}`,
        anonymousId: crypto.randomUUID(),
        messageId,
        properties: { plan: "pro", i },
        context: { page: { path: "/pricing" }, library: { name: "analytics.js" } },
        timestamp: new Date(t0 + i).toISOString(),
        receivedAt: new Date(t0 + i).toISOString(),
        sourceId: i % 4 === 0 ? "app" : "web",
        keyId: "wk",
      };
      batch.push(encoder.encode(JSON.stringify(event)));
      if (batch.length === 5000) {
        await log.append(batch);
        batch = [];
      }
    }
    if (batch.length > 0) await log.append(batch);
    const bytes = log.segments().reduce((n, s) => n + s.bytes, 0);
    console.error(
      `[inspector] ${events} events written (${(bytes / 2 ** 30).toFixed(2)} GiB) in ${((performance.now() - started) / 1000).toFixed(0)} s`,
    );
    const shards = new IndexShards(join(dir, "index"));
    const source = eventLogSource(log);
    started = performance.now();
    const cpu = process.cpuUsage();
    new SearchIndexer(shards, source, { logger, batch: 5000 }).catchUp();
    const used = process.cpuUsage(cpu);
    const buildS = (performance.now() - started) / 1000;
    const cpuUs = (used.user + used.system) / events;
    console.error(
      `[inspector] indexed in ${buildS.toFixed(0)} s, ${cpuUs.toFixed(1)} µs CPU/event`,
    );
    const indexBytes = [...new Bun.Glob("*").scanSync(join(dir, "index"))].reduce(
      (n, f) => n + Bun.file(join(dir, "index", f)).size,
      0,
    );
    shards.close();
    // Searched as the server does: a read-only view beside the writer thread's shards.
    const view = new IndexShards(join(dir, "index"), { readOnly: true });
    const searcher = new EventSearch(view, source);
    const time = (q: () => Parameters<EventSearch["search"]>[0]) => {
      const ms: number[] = [];
      for (let i = 0; i < queries; i++) {
        const t = performance.now();
        searcher.search(q());
        ms.push(performance.now() - t);
      }
      ms.sort((a, b) => a - b);
      return `${ms[Math.floor(ms.length / 2)]!.toFixed(2)} / ${ms[Math.floor(ms.length * 0.99)]!.toFixed(2)}`;
    };
    const pick = () => ids[Math.floor(Math.random() * ids.length)]!;
    console.log(`\nsearch over ${events.toLocaleString("en")} stored events:`);
    console.log(
      `index: ${(indexBytes / 2 ** 20).toFixed(0)} MiB on disk (${(indexBytes / events).toFixed(0)} bytes/event), built at ${cpuUs.toFixed(1)} µs CPU/event`,
    );
    console.log("| query (limit 50) | p50 / p99 ms |");
    console.log("| --- | ---: |");
    console.log(`| exact messageId | ${time(() => ({ messageId: pick(), limit: 50 }))} |`);
    console.log(
      `| userId (~${Math.round(events / 100_000)} events each) | ${time(() => ({ userId: `user-${Math.floor(Math.random() * 100_000)}`, limit: 50 }))} |`,
    );
    console.log(
      `| event name + source (~${Math.round(events / 50 / 1.33)} events each) | ${time(() => ({ event: `Event ${Math.floor(Math.random() * 50)}`, source: "web", limit: 50 }))} |`,
    );
    console.log(`| newest 50, no filter | ${time(() => ({ limit: 50 }))} |`);
    view.close();
    await log.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (argv[0] === "ingest") await ingest();
else if (argv[0] === "search") await search();
else {
  console.error("usage: bun bench/inspector.ts ingest|search [options]");
  process.exit(2);
}
