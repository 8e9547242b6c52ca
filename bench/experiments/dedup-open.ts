/**
 * The dedup store's open on a filled window (see `bench/capacity.ts --fill-only`), alone,
 * as a restart after a clean stop and after kill -9: on a copy of DIR, the store is
 * opened and closed (a clean stop: its filter copies written), opened again (timed:
 * "clean"), KEYS keys are recorded and written (as a load does), then the store is
 * opened again beside the first one, which never copies its filter again (timed: "crash").
 * Prints wall time, this process's CPU, and where the open went (filter copies, re-read,
 * rebuilt segments) when the checkout reports it.
 *
 *   bun bench/experiments/dedup-open.ts DIR [--keys 2000000] [--src OTHER/src/dedup/sqlite.ts]
 *
 * `--src` opens the store of another checkout (before/after on the same copy's twin).
 */
import { cpSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const argv = process.argv.slice(2);
const from = argv[0]!;
const flag = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const KEYS = Number(flag("keys") ?? 2_000_000);
const SRC = resolve(flag("src") ?? join(import.meta.dir, "../../src/dedup/sqlite.ts"));
const { SqliteDedupStore } = (await import(SRC)) as typeof import("../../src/dedup/sqlite.ts");
type Store = Awaited<ReturnType<typeof SqliteDedupStore.open>>;
const dir = mkdtempSync(join(tmpdir(), "dedup-open-"));
const opts = { windowSeconds: 86_400 };

async function timedOpen(tag: string): Promise<Store> {
  const wall = performance.now();
  const cpu = process.cpuUsage();
  const store = await SqliteDedupStore.open(dir, opts);
  const c = process.cpuUsage(cpu);
  const o = (store as { opened?: Store["opened"] }).opened;
  const ms = o
    ? `; copies ${o.ms.copies.toFixed(0)} ms, re-read ${o.ms.reread.toFixed(0)} ms (${o.reread} keys), ` +
      `rebuilt ${o.ms.rebuild.toFixed(0)} ms, from dedup.db's table ${o.fromTable}` +
      (o.rejected.length ? `, rejected: ${o.rejected.join("; ")}` : "")
    : "";
  console.log(
    `${tag}: opened in ${((performance.now() - wall) / 1000).toFixed(2)} s wall, ` +
      `${((c.user + c.system) / 1e6).toFixed(2)} s CPU${ms}`,
  );
  return store;
}

try {
  for (const name of readdirSync(from)) {
    if (name.startsWith("dedup")) cpSync(join(from, name), join(dir, name), { recursive: true });
  }
  // A clean stop first, so the copies are in this checkout's format (an upgrade, once).
  await (await timedOpen("first open (as filled)")).close();
  await (await timedOpen("clean")).close();
  const first = await SqliteDedupStore.open(dir, opts);
  for (let done = 0; done < KEYS; done += 500) {
    const ids = Array.from({ length: 500 }, () => crypto.randomUUID());
    first.remember(
      ids.map((messageId) => ({ sourceId: "bench", messageId })),
      "1:0:0",
    );
    await first.backlog();
    await new Promise((r) => setImmediate(r));
  }
  await first.flush();
  console.log(`${KEYS} keys written after the filter copies`);
  // `first` stays open and never copies its filter again (a crash: no copy since).
  await timedOpen("crash");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
// The stores left open have writer threads that may still write filter copies (and
// make the folder again) until the process is gone: the folder goes once more after.
Bun.spawn(["sh", "-c", `sleep 2; rm -rf '${dir}'`], {
  stdio: ["ignore", "ignore", "ignore"],
}).unref();
process.exit(0);
