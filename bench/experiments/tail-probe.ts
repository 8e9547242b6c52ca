/**
 * Entry wrapper for `sluice serve` that records, inside the server, what can make a
 * request slow (bench/experiments/tail-trace.ts starts it; issue 11, "the tail at half
 * rate"). Then it runs the CLI of TAIL_TREE (default: this tree's src/main.ts).
 *
 * - The event loop's stalls: a 1 ms interval timer that measures its own lateness; a gap
 *   over 2 ms is kept with its end (ms since the epoch), how much CPU the event loop's
 *   thread used meanwhile (CLOCK_THREAD_CPUTIME_ID: busy with JS, GC or a system call,
 *   or off the CPU while another thread or process ran), and the JS heap's change over
 *   it (a fall: a collection ended inside the gap).
 * - Timer callbacks (setInterval/setTimeout) that take over 0.5 ms, with their name.
 * - `Bun.gc` calls (the dedup store's GC pacing) and their duration.
 * - Each `FileHandle.write`/`writev` (the group commits, the zeros ahead): start and end.
 * - Worker messages handled on the event loop that take over 0.5 ms.
 *
 * Written as JSON to TAIL_OUT when the process exits.
 */
import { dlopen, FFIType } from "bun:ffi";
import { heapSize, heapStats } from "bun:jsc";
import { writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";

const out = process.env.TAIL_OUT;
const tree = process.env.TAIL_TREE ?? join(import.meta.dir, "..", "..", "src", "main.ts");
const libc = dlopen("libc.so.6", {
  clock_gettime: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
});
const CLOCK_THREAD_CPUTIME_ID = 3;
const spec = new BigInt64Array(2);
const threadCpuMs = () => {
  libc.symbols.clock_gettime(CLOCK_THREAD_CPUTIME_ID, spec);
  return Number(spec[0]) * 1e3 + Number(spec[1]) / 1e6;
};
const wall = () => performance.timeOrigin + performance.now();

/** heapMb: the JS heap's change over the gap (a fall: a collection ended in it). */
type Stall = [end: number, gapMs: number, cpuMs: number, heapMb: number];
type Span = [start: number, ms: number, label: string, cpuMs: number];
const stalls: Stall[] = [];
const timers: Span[] = [];
const gcs: Span[] = [];
const messages: Span[] = [];
const writes: [start: number, ms: number, bytes: number][] = [];

// Wrapped first, so that the lateness timer itself is not recorded as a timer callback.
const realSetInterval = globalThis.setInterval;
const realSetTimeout = globalThis.setTimeout;
const timed = (fn: (...a: unknown[]) => unknown, label: () => string, into: Span[]) =>
  function (this: unknown, ...args: unknown[]) {
    const t0 = performance.now();
    const c0 = threadCpuMs();
    try {
      return fn.apply(this, args);
    } finally {
      const ms = performance.now() - t0;
      if (ms > 0.5) into.push([wall() - ms, ms, label(), threadCpuMs() - c0]);
    }
  };
const nameOf = (fn: { name?: string; toString(): string }) =>
  fn.name || fn.toString().slice(0, 80).replace(/\s+/g, " ");
// biome-ignore lint/suspicious/noExplicitAny: wrapping the globals as they are
(globalThis as any).setInterval = (fn: any, ms?: number, ...rest: unknown[]) =>
  typeof fn === "function"
    ? realSetInterval(
        timed(fn, () => `interval ${ms}: ${nameOf(fn)}`, timers),
        ms,
        ...rest,
      )
    : realSetInterval(fn, ms, ...rest);
// biome-ignore lint/suspicious/noExplicitAny: wrapping the globals as they are
(globalThis as any).setTimeout = (fn: any, ms?: number, ...rest: unknown[]) =>
  typeof fn === "function"
    ? realSetTimeout(
        timed(fn, () => `timeout ${ms}: ${nameOf(fn)}`, timers),
        ms,
        ...rest,
      )
    : realSetTimeout(fn, ms, ...rest);

const realGc = Bun.gc;
// biome-ignore lint/suspicious/noExplicitAny: Bun.gc is writable
(Bun as any).gc = (force?: boolean) => {
  const t0 = performance.now();
  const c0 = threadCpuMs();
  const r = realGc(force);
  const ms = performance.now() - t0;
  gcs.push([wall() - ms, ms, `Bun.gc(${force})`, threadCpuMs() - c0]);
  return r;
};

// Worker messages on the event loop: `onmessage` set on a Worker, wrapped when set.
const desc = Object.getOwnPropertyDescriptor(EventTarget.prototype, "onmessage");
const workerDesc = Object.getOwnPropertyDescriptor(Worker.prototype, "onmessage") ?? desc;
if (workerDesc?.set) {
  const set = workerDesc.set;
  Object.defineProperty(Worker.prototype, "onmessage", {
    ...workerDesc,
    set(fn: ((e: MessageEvent) => void) | null) {
      set.call(
        this,
        fn ? timed(fn as (...a: unknown[]) => unknown, () => "worker onmessage", messages) : fn,
      );
    },
  });
}

// Parts of the dedup store's 100 ms tick and the search index's side, each timed.
const parts: [string, string[]][] = [
  [join(tree, "..", "dedup", "sqlite.ts"), ["expire", "sweep", "resize", "sendKeys", "seal"]],
  [join(tree, "..", "dedup", "gc.ts"), ["check"]],
];
for (const [file, methods] of parts) {
  const mod = (await import(file)) as Record<string, { prototype?: Record<string, unknown> }>;
  for (const cls of Object.values(mod)) {
    const proto = cls?.prototype;
    if (!proto) continue;
    for (const m of methods) {
      const fn = proto[m];
      if (typeof fn !== "function" || !Object.hasOwn(proto, m)) continue;
      proto[m] = timed(fn as (...a: unknown[]) => unknown, () => `part ${m}`, timers);
    }
  }
}

// The first collection JSC logs (BUN_JSC_logGC) is this thread's: tail-trace.ts numbers
// heaps in the order they first log.
realGc(true);

const probe = await open("/dev/null", "r");
const fhProto = Object.getPrototypeOf(probe) as Record<string, (...a: unknown[]) => unknown>;
await probe.close();
for (const method of ["write", "writev"] as const) {
  const real = fhProto[method]!;
  fhProto[method] = function (this: unknown, ...args: unknown[]) {
    const start = wall();
    const p = real.apply(this, args) as Promise<{ bytesWritten: number }>;
    return p.then((r) => {
      writes.push([start, wall() - start, r.bytesWritten]);
      return r;
    });
  };
}

let expected = performance.now() + 1;
let cpu = threadCpuMs();
let heap = heapSize();
realSetInterval(() => {
  const now = performance.now();
  const c = threadCpuMs();
  const h = heapSize();
  const gap = now - expected + 1;
  if (gap > 2) stalls.push([wall(), gap, c - cpu, (h - heap) / 2 ** 20]);
  expected = now + 1;
  cpu = c;
  heap = h;
}, 1).unref();

process.on("exit", () => {
  if (!out) return;
  // What the event loop's heap holds at the end (its full collections mark all of it).
  const h = heapStats();
  const types = Object.entries(h.objectTypeCounts)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 25);
  // What one full collection asked for on the event loop costs (as the dedup store's GC
  // pacing does, src/dedup/gc.ts, once its filter holds 64 MiB): the heap as the run left it.
  const t0 = performance.now();
  realGc(true);
  const fullGcMs = performance.now() - t0;
  const heap = {
    heapSize: h.heapSize,
    objectCount: h.objectCount,
    extra: h.extraMemorySize,
    types,
    fullGcMs,
  };
  writeFileSync(out, JSON.stringify({ stalls, timers, gcs, messages, writes, heap }));
});

await import(tree);
