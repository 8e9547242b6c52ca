/**
 * The other thread of filter.test.ts's race: inserts its keys into the same shared
 * filter segments as the test's thread, round by round, each round started together.
 */
import { FilterSegment, Placement } from "../../src/dedup/filter.ts";
import type { SlotRange } from "../../src/dedup/geometry.ts";

declare const self: Worker;

export interface RaceInit {
  buffers: SharedArrayBuffer[];
  /** This thread's keys, `perRound` per round. */
  hashes: Float64Array;
  perRound: number;
  tag: number;
  range: SlotRange;
  /** [rounds started, rounds this thread finished] */
  control: Int32Array;
}

self.onmessage = (e: MessageEvent<RaceInit>) => {
  const { buffers, hashes, perRound, tag, range, control } = e.data;
  const p = new Placement();
  const stashes: number[][] = [];
  self.postMessage({ t: "ready" });
  for (let r = 0; r < buffers.length; r++) {
    while (Atomics.load(control, 0) <= r) {
      // spin: the round starts at once on both threads
    }
    const segment = new FilterSegment(buffers[r]!);
    for (let i = r * perRound; i < (r + 1) * perRound; i++) {
      const h = hashes[i]!;
      segment.insert(p.of(h), h, tag, range);
    }
    stashes.push(segment.stash);
    Atomics.store(control, 1, r + 1);
  }
  self.postMessage({ t: "done", stashes });
};
