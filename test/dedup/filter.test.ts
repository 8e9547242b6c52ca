import { expect, test } from "bun:test";
import { BUCKET_ENTRIES, FilterSegment, Placement } from "../../src/dedup/filter.ts";
import type { SlotRange } from "../../src/dedup/geometry.ts";
import type { RaceInit } from "./filter-race-worker.ts";

// The filter's segments live in SharedArrayBuffers: while the writer thread fills a
// resized segment from disk, the main thread inserts the keys it records into the same
// table (src/dedup/sqlite.ts, resize). Two inserts racing for one free place must both
// end up in the table: the compare-and-swap expects what the scan saw there, so the
// thread that loses looks again instead of overwriting the winner's entry (a key lost
// from the filter: a duplicate stored twice). bench/experiments/dedup-fill-race.ts
// shows it through a whole store; here two threads race head on, round after round.

const ROUNDS = 2000;
/** Small tables, filled to ~80% by the two threads together: most inserts contend. */
const BUCKETS = 8;
const PER_THREAD = 26;
const TAG = 7;
const RANGE: SlotRange = { current: 10, first: 0 };

/** Distinct 53-bit hashes from a fixed seed (xorshift), so every run races the same keys. */
function hashes(n: number, seed: number): Float64Array {
  const out = new Float64Array(n);
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  for (let i = 0; i < n; i++) out[i] = (next() & 0x1fffff) * 2 ** 32 + next();
  return out;
}

test("two threads inserting into one shared filter segment at once: every key of both is found", async () => {
  const buffers = Array.from(
    { length: ROUNDS },
    () => new SharedArrayBuffer(BUCKETS * BUCKET_ENTRIES * 4),
  );
  const mine = hashes(ROUNDS * PER_THREAD, 0x9e3779b9);
  const theirs = hashes(ROUNDS * PER_THREAD, 0x85ebca6b);
  const control = new Int32Array(new SharedArrayBuffer(8));
  const worker = new Worker(new URL("./filter-race-worker.ts", import.meta.url).href);
  try {
    const messages: { t: string; stashes?: number[][] }[] = [];
    worker.onmessage = (e) => messages.push(e.data);
    const init: RaceInit = {
      buffers,
      hashes: theirs,
      perRound: PER_THREAD,
      tag: TAG,
      range: RANGE,
      control,
    };
    worker.postMessage(init);
    while (!messages.some((m) => m.t === "ready")) await Bun.sleep(1);

    const p = new Placement();
    const myStashes: number[][] = [];
    // The waits below spin (a round must start on both threads at once), so a thread that
    // stopped would hang the test past its timeout: they give up by this deadline.
    const deadline = Date.now() + 20_000;
    for (let r = 0; r < ROUNDS; r++) {
      Atomics.store(control, 0, r + 1); // go
      const segment = new FilterSegment(buffers[r]!);
      for (let i = r * PER_THREAD; i < (r + 1) * PER_THREAD; i++) {
        const h = mine[i]!;
        segment.insert(p.of(h), h, TAG, RANGE);
      }
      myStashes.push(segment.stash);
      while (Atomics.load(control, 1) <= r) {
        // the other thread's round: the next starts on both together
        if (Date.now() > deadline) throw new Error(`the other thread stopped in round ${r}`);
      }
    }
    while (!messages.some((m) => m.t === "done")) await Bun.sleep(1);
    const theirStashes = messages.find((m) => m.t === "done")!.stashes!;

    const lost: string[] = [];
    const found: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const segment = new FilterSegment(buffers[r]!);
      segment.stash = [...myStashes[r]!, ...theirStashes[r]!];
      for (const [who, keys] of [
        ["mine", mine],
        ["theirs", theirs],
      ] as const) {
        for (let i = r * PER_THREAD; i < (r + 1) * PER_THREAD; i++) {
          const h = keys[i]!;
          found.length = 0;
          segment.find(p.of(h), h, RANGE, found);
          if (!found.includes(TAG)) lost.push(`round ${r}: ${who} ${h}`);
        }
      }
    }
    expect(lost).toEqual([]);
  } finally {
    worker.terminate();
  }
});
