/**
 * The filter's memory cost alone, in two parts.
 *
 * 1. One filter segment's lookup (`FilterSegment.find`) at several table sizes: a
 *    million random hashes looked up three times in a table filled to 60%. Small tables
 *    show the engine's cost of a bucket scan, large ones the memory's.
 * 2. `--whole`: the whole filter as the store lays it out (SEGMENTS segments, each sized
 *    for its share of the window at 60%), for windows of 1M to 50M keys (6 MB to 330
 *    MB): batches of 500 new random hashes, first looked up (as `seen` does) and then
 *    inserted (as `remember` does), so that each key costs what it costs in the store's
 *    filter on a window of that size. Timed in CPU time of the process (batches of 500
 *    keys: each reading costs a few µs against the batch's hundreds).
 *
 *   bun bench/experiments/filter-find.ts [--whole] [--src OTHER/src/dedup/filter.ts]
 *       [--windows 1,5,10,15,20,35,50] (millions of keys)
 */
import { join, resolve } from "node:path";

const argv = process.argv.slice(2);
const i = argv.indexOf("--src");
const SRC = resolve(i >= 0 ? argv[i + 1]! : join(import.meta.dir, "../../src/dedup/filter.ts"));
const { FilterSegment, Placement, SEGMENTS, bucketsFor } = (await import(
  SRC
)) as typeof import("../../src/dedup/filter.ts");
const w = argv.indexOf("--windows");
const WINDOWS = (w >= 0 ? argv[w + 1]! : "1,5,10,15,20,35,50").split(",").map(Number);

const range = { current: 1000, first: 10 };
const N = 1_000_000;
/** A random hash as the store's are: an integer in [0, 2^53). */
const randomHash = () =>
  Math.floor(Math.random() * 2 ** 32) * 2_097_152 + ((Math.random() * 2_097_152) >>> 0);

/** CPU time of this process in ms (on a shared machine, wall time counts the others' too). */
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

if (!argv.includes("--whole")) {
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
} else {
  const BATCH = 500;
  console.log(`filter ${SRC}`);
  console.log("| window keys | filter MB | find ns/key | insert ns/key |");
  for (const millions of WINDOWS) {
    const keys = millions * 1e6;
    const segments = Array.from({ length: SEGMENTS }, () =>
      FilterSegment.allocate(bucketsFor(keys / SEGMENTS)),
    );
    let bytes = 0;
    for (const s of segments) bytes += s.buffer.byteLength;
    const p = new Placement();
    // Filled to 60% (the load a resize aims for) less what the measured inserts add.
    for (let k = 0; k < keys - N; k++) {
      const h = randomHash();
      segments[p.of(h).seg]!.insert(p, h, 500, range);
    }
    const hashes = new Float64Array(N);
    for (let k = 0; k < N; k++) hashes[k] = randomHash();
    const out: number[] = [];
    let findMs = 0;
    let insertMs = 0;
    for (let b = 0; b < N; b += BATCH) {
      const t0 = cpuMs();
      for (let k = b; k < b + BATCH; k++) {
        const h = hashes[k]!;
        out.length = 0;
        segments[p.of(h).seg]!.find(p, h, range, out);
      }
      const t1 = cpuMs();
      for (let k = b; k < b + BATCH; k++) {
        const h = hashes[k]!;
        segments[p.of(h).seg]!.insert(p, h, 501, range);
      }
      findMs += t1 - t0;
      insertMs += cpuMs() - t1;
    }
    console.log(
      `| ${millions}M | ${(bytes / 1e6).toFixed(0)} | ${((findMs * 1e6) / N).toFixed(0)} | ` +
        `${((insertMs * 1e6) / N).toFixed(0)} |`,
    );
  }
}
