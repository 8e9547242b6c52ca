/**
 * Delivery into PostgreSQL, then a replay of everything through the CLI: how fast a
 * connection catches up with a backlog, and how fast `sluice replay` re-sends it
 * (rows stay one per messageId). Usage: `bun bench/delivery.ts [events]` (default
 * 20,000), PostgreSQL at $SLUICE_TEST_PG (default postgres://postgres@127.0.0.1:5432/test).
 */
import { rmSync } from "node:fs";
import { SQL } from "bun";
import { makeTestConfig, runCli, spawnServer } from "../test/support/server.ts";

const total = Number(process.argv[2] ?? 20_000);
const pgUrl = process.env.SLUICE_TEST_PG ?? "postgres://postgres@127.0.0.1:5432/test";
const table = `bench_${Date.now()}`;
const sql = new SQL(pgUrl);
const made = makeTestConfig({
  web: { rateLimit: { eventsPerSecond: 1_000_000, burst: 1_000_000 } },
  config: {
    connections: [
      { id: "con_pg", source: "web", destination: { type: "postgres", url: pgUrl, table } },
    ],
  },
});
const count = async () => {
  try {
    return (await sql`SELECT count(*)::int AS n FROM ${sql(table)}`)[0].n as number;
  } catch {
    return 0;
  }
};
const server = await spawnServer(made.configFile);
try {
  const from = new Date(Date.now() - 1000).toISOString();
  const sent = performance.now();
  for (let i = 0; i < total; i += 500) {
    const batch = Array.from({ length: Math.min(500, total - i) }, (_, j) => ({
      type: "track",
      event: "Bench",
      userId: `u${(i + j) % 100}`,
      messageId: `bench-${i + j}`,
      properties: { n: i + j, plan: "pro" },
    }));
    const res = await fetch(`${server.url}/v1/batch`, {
      method: "POST",
      headers: { "x-write-key": made.keys.server, "content-type": "application/json" },
      body: JSON.stringify({ batch }),
    });
    if (res.status !== 200) throw new Error(`ingest answered ${res.status}`);
  }
  while ((await count()) < total) await Bun.sleep(50);
  const deliveredMs = performance.now() - sent;
  console.log(
    `delivered ${total} events (sent in batches of 500) in ${(deliveredMs / 1000).toFixed(1)} s: ` +
      `${Math.round(total / (deliveredMs / 1000))} events/s end to end`,
  );
  const started = performance.now();
  const out = await runCli([
    "replay",
    "--connection",
    "con_pg",
    "--from",
    from,
    "--config",
    made.configFile,
  ]);
  const replayMs = performance.now() - started;
  console.log(out.stdout.trim());
  console.log(
    `replay command (process start included): ${(replayMs / 1000).toFixed(1)} s; rows after: ${await count()}`,
  );
} finally {
  server.proc.kill("SIGTERM");
  await server.proc.exited;
  await sql`DROP TABLE IF EXISTS ${sql(table)}`;
  await sql.close();
  rmSync(made.dir, { recursive: true, force: true });
}
