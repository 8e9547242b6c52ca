/**
 * One filter segment's lookup (`FilterSegment.find`) at several table sizes, alone: a
 * million random hashes looked up three times in a table filled to 60%. Small tables
 * show the engine's cost of a bucket scan, large ones the memory's.
 *
 *   bun bench/experiments/filter-find.ts [--src OTHER/src/dedup/filter.ts]
 */
import { join, resolve } from "node:path";

const i = process.argv.indexOf("--src");
const SRC = resolve(
  i >= 0 ? process.argv[i + 1]! : join(import.meta.dir, "../../src/dedup/filter.ts"),
);
const { FilterSegment, Placement, bucketsFor } = (await import(
  SRC
)) as typeof import("../../src/dedup/filter.ts");

const range = { current: 1000, first: 10 };
const N = 1_000_000;
for (const keys of [8_000, 64_000, 256_000, 1_000_000, 4_000_000]) {
  const table = new FilterSegment(new SharedArrayBuffer(bucketsFor(keys) * 32));
  const p = new Placement();
  for (let k = 0; k < keys * 0.6; k++) {
    const h = Math.floor(Math.random() * 2 ** 47);
    table.insert(p.of(h), h, 500, range);
  }
  const hashes = new Float64Array(N);
  for (let k = 0; k < N; k++) hashes[k] = Math.floor(Math.random() * 2 ** 47);
  const out: number[] = [];
  const started = performance.now();
  for (let round = 0; round < 3; round++) {
    for (let k = 0; k < N; k++) {
      const h = hashes[k]!;
      out.length = 0;
      table.find(p.of(h), h, range, out);
    }
  }
  const us = ((performance.now() - started) * 1000) / N / 3;
  console.log(`table ${((bucketsFor(keys) * 32) / 1e6).toFixed(2)} MB: find ${us.toFixed(3)} µs`);
}
