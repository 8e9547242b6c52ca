/**
 * A process for slot-rule.test.ts to kill -9 once it has done its steps: a dedup store
 * on DIR (60 s window, 1 s slots, 4 slots a slice, a filter copy once 1,000 keys were
 * written) driven by a clock the steps set. Prints "done" when every step is done, or
 * "error: …" when the store reports a failed write, then waits to be killed.
 *
 *   bun slot-child.ts DIR STEPS [SNAPSHOT_MIN_KEYS]
 *
 * STEPS is JSON: [{ "at": ms } | { "remember": prefix, "n": count } | { "flush": true }
 * | { "copies": true }] (copies: wait until every filter segment has a copy on disk).
 */
import { existsSync, readdirSync } from "node:fs";
import { SEGMENTS } from "../../src/dedup/filter.ts";
import { filterDir } from "../../src/dedup/filter-file.ts";
import { SqliteDedupStore } from "../../src/dedup/sqlite.ts";
import { SLOT_OPTS, slotKeys } from "./slot-keys.ts";

type Step = { at: number } | { remember: string; n: number } | { flush: true } | { copies: true };

// Never outlive the test: a runner killed mid-test must not leave this running.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(3);
}, 200).unref();
setTimeout(() => process.exit(3), 60_000).unref();

const dir = process.argv[2]!;
const steps = JSON.parse(process.argv[3]!) as Step[];
let now = 0;
const store = await SqliteDedupStore.open(dir, {
  ...SLOT_OPTS,
  snapshotMinKeys: Number(process.argv[4] ?? SLOT_OPTS.snapshotMinKeys),
  now: () => now,
  onError: (err) => console.log(`error: ${err.message}`),
});
let offset = Number(store.checkpoint() ?? 0);
for (const step of steps) {
  if ("at" in step) now = step.at;
  else if ("remember" in step) store.remember(slotKeys(step.remember, step.n), String(++offset));
  else if ("flush" in step) await store.flush();
  else {
    const copies = () =>
      existsSync(filterDir(dir))
        ? readdirSync(filterDir(dir)).filter((f) => /^segment-\d+$/.test(f))
        : [];
    while (copies().length < SEGMENTS) await Bun.sleep(5);
  }
}
console.log("done");
// Held open (the writer thread is unref'd): killed here, never closed.
setInterval(() => {}, 1000);
