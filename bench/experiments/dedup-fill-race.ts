/**
 * Keys lost from the live filter while segments are refilled: a store on an empty dir
 * records 120 batches of 500 random ids as fast as it can (the writer thread refilling
 * resized segments meanwhile), then looks all of them up; every one must be found.
 * Repeats ROUNDS times and prints the rounds that lost keys (before the fix of
 * `FilterSegment.insert`'s compare-and-swap: about one in ten).
 *
 *   bun bench/experiments/dedup-fill-race.ts [--rounds 40] [--src OTHER/src/dedup/sqlite.ts]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const argv = process.argv.slice(2);
const flag = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const ROUNDS = Number(flag("rounds") ?? 40);
const SRC = resolve(flag("src") ?? join(import.meta.dir, "../../src/dedup/sqlite.ts"));
const { SqliteDedupStore } = (await import(SRC)) as typeof import("../../src/dedup/sqlite.ts");

let lossy = 0;
for (let round = 0; round < ROUNDS; round++) {
  const dir = mkdtempSync(join(tmpdir(), "dedup-fill-race-"));
  try {
    const store = await SqliteDedupStore.open(dir, { windowSeconds: 3600 });
    const all: string[] = [];
    for (let b = 0; b < 120; b++) {
      const batch = Array.from({ length: 500 }, () => crypto.randomUUID());
      all.push(...batch);
      store.remember(
        batch.map((messageId) => ({ sourceId: "web", messageId })),
        `1:${b}`,
      );
      await new Promise((r) => setImmediate(r));
    }
    const found = await store.seen("web", all);
    if (found.size !== all.length) {
      lossy++;
      console.log(`round ${round}: ${all.length - found.size} of ${all.length} keys not found`);
    }
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
console.log(`${lossy} of ${ROUNDS} rounds lost keys`);
process.exit(0);
