/**
 * One request through the whole Elysia app in process (`app.handle()`), for what an
 * answer costs (issue 11): routing, the hooks, the write key and rate limit, the body,
 * ingest, and the `Response` of the answer with its headers. The log and the dedup
 * store answer at once (no disk), so only the request path's own work is timed; Bun's
 * listener (the socket, writing the answer out) is not part of it. Two trees
 * interleaved: the machine's load moves both alike.
 *
 *   bun bench/experiments/answer-cost.ts [--before OTHER/src] [--rounds 8] [--ms 1000]
 *       [--path /api/s/track] [--key browser|server] [--origin URL] [--limited]
 *
 * `--origin` sends an Origin header (the CORS headers are then part of the answer);
 * `--limited` uses a key whose bucket is empty (every answer a 429). The event is
 * bench/lua/event.json.tmpl with a fresh messageId per request. Measured as the
 * process's CPU time (all threads: the JIT's and the collector's too) per request,
 * the Request's construction included (the same for both trees).
 */

import { Database } from "bun:sqlite";
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
const path = opt("path") ?? "/api/s/track";
const keyType = opt("key") ?? "browser";
const origin = opt("origin");
const limited = argv.includes("--limited");
const trees: [string, string][] = [["this tree", join(import.meta.dir, "..", "..", "src")]];
if (opt("before")) trees.unshift(["before", resolve(opt("before")!)]);

const template = readFileSync(join(import.meta.dir, "..", "lua", "event.json.tmpl"), "utf8");
const [head, tail] = template.split("@ID@") as [string, string];
const writeKey = `${keyType === "browser" ? "wk_browser" : "wk_server"}:bench-secret-0123456789`;
const rate = limited ? { eventsPerSecond: 0.001, burst: 1 } : { eventsPerSecond: 1e9, burst: 1e9 };
const rawConfig = {
  server: { port: 0, host: "127.0.0.1", dataDir: "/nonexistent" },
  logger: { level: "silent" },
  sources: [
    {
      id: "bench",
      writeKeys: [
        { id: "wk_browser", type: "browser", key: "wk_browser:bench-secret-0123456789" },
        { id: "wk_server", type: "server", key: "wk_server:bench-secret-0123456789" },
      ],
      rateLimit: rate,
    },
  ],
};
const cursor = ["1:100"];
const log = {
  append: () => Promise.resolve(cursor),
  appendLast: () => Promise.resolve(cursor[0]),
  healthy: () => true,
};
const none = new Set<string>();
const dedup = { seen: () => Promise.resolve(none), remember: () => undefined, healthy: () => true };

const apps = await Promise.all(
  trees.map(async ([name, dir]) => {
    const { parseConfig } = await import(join(dir, "config", "load.ts"));
    const { IngestService } = await import(join(dir, "ingest", "service.ts"));
    const { KeyRing } = await import(join(dir, "auth", "resolve.ts"));
    const { SqliteRateLimiter } = await import(join(dir, "ratelimit", "sqlite.ts"));
    const { SluiceMetrics } = await import(join(dir, "metrics", "sluice.ts"));
    const { buildHttpApp } = await import(join(dir, "http", "server.ts"));
    const { config } = parseConfig(rawConfig, "bench.json", {});
    const logger = pino({ level: "silent" });
    const deps = {
      config,
      keys: new KeyRing(config.sources),
      ingest: new IngestService({ log, dedup, logger, maxEventBytes: config.limits.maxEventBytes }),
      limiter: new SqliteRateLimiter(new Database(":memory:")),
      log,
      dedup,
      logger,
      lifecycle: { shuttingDown: false },
      metrics: new SluiceMetrics({ version: "bench" }),
    };
    const app = buildHttpApp(deps);
    return { name, app, samples: [] as number[], status: 0, headers: [] as string[] };
  }),
);

const headers: Record<string, string> = {
  "content-type": "application/json",
  "x-write-key": writeKey,
  "user-agent": "answer-cost",
};
if (origin) headers.origin = origin;
let n = 0;
async function run(target: (typeof apps)[number], until: number) {
  let calls = 0;
  while (performance.now() < until) {
    for (let i = 0; i < 100; i++) {
      const res: Response = await target.app.handle(
        new Request(`http://localhost${path}`, {
          method: "POST",
          headers,
          body: `${head}m-${++n}${tail}`,
        }),
      );
      target.status = res.status;
    }
    calls += 100;
  }
  return calls;
}

for (const a of apps) await run(a, performance.now() + ms); // warm-up
for (const a of apps) {
  const res: Response = await a.app.handle(
    new Request(`http://localhost${path}`, {
      method: "POST",
      headers,
      body: `${head}m-${++n}${tail}`,
    }),
  );
  console.log(`${a.name}: ${res.status} ${[...res.headers.keys()].join(" ")} ${await res.text()}`);
}
for (let r = 0; r < rounds; r++) {
  for (const a of apps) {
    // Process CPU, not wall time: on a shared machine this process waits its turn.
    const cpu = process.cpuUsage();
    const calls = await run(a, performance.now() + ms);
    const used = process.cpuUsage(cpu);
    a.samples.push((used.user + used.system) / calls);
  }
}
for (const a of apps) {
  const sorted = [...a.samples].sort((x, y) => x - y);
  console.log(
    `${a.name}: CPU µs per request (${path}, status ${a.status}), median ` +
      `${sorted[Math.floor(sorted.length / 2)]!.toFixed(2)}, rounds ${a.samples.map((x) => x.toFixed(2)).join(" ")}`,
  );
}
process.exit(0);
