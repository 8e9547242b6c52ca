/**
 * The event log's zeros ahead (issue 11), on the disk alone: 3,000 synchronous 4 KB
 * appends back to back (O_DSYNC, Bun's async fs, as the log writes) into a fallocated
 * 64 MiB file, with
 *   - fallocate  nothing else (blocks "unwritten": each first write changes metadata),
 *   - ahead      zeros written 1-4 MiB ahead of the appends, 1 MiB O_DSYNC writes in
 *                the background, as src/log/file/file-log.ts does,
 *   - prefilled  the whole file zero-written before the appends start.
 * Prints p50/p90/p99/max latency per append, the mean (wall time / appends) and the
 * process CPU per append (user + system, Bun's I/O threads included).
 *
 *   bun bench/experiments/zero-ahead.ts DIR [--rounds N]
 */
import { constants, mkdirSync, rmSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { preallocate } from "../../src/log/file/preallocate.ts";

const dir = process.argv[2];
if (!dir || dir.startsWith("--")) {
  console.error("usage: bun bench/experiments/zero-ahead.ts DIR [--rounds N]");
  process.exit(2);
}
const i = process.argv.indexOf("--rounds");
const rounds = i > 0 ? Number(process.argv[i + 1]) : 2;
const work = join(dir, `zero-ahead-${process.pid}`);
mkdirSync(work, { recursive: true });

const N = 3000;
const SZ = 4096;
const SEG = 64 << 20;
const CHUNK = 1 << 20;
const AHEAD = 4 << 20;
const record = new Uint8Array(SZ).fill(7);
const zeros = new Uint8Array(CHUNK);

async function run(mode: "fallocate" | "ahead" | "prefilled") {
  const path = join(work, mode);
  const h = await open(
    path,
    constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC | constants.O_DSYNC,
  );
  preallocate(h.fd, SEG);
  if (mode === "prefilled") for (let o = 0; o < SEG; o += CHUNK) await h.write(zeros, 0, CHUNK, o);
  let size = 0;
  let zeroed = 0;
  let writingTo = 0;
  let chunks = 0;
  // In an object: TypeScript does not see the closures reassign a plain local.
  const z: { zeroing: { from: number; done: Promise<void> } | null } = { zeroing: null };
  const ahead = () => {
    if (z.zeroing || mode !== "ahead") return;
    const from = Math.max(zeroed, Math.ceil(Math.max(size, writingTo) / 4096) * 4096 + CHUNK);
    if (from >= size + AHEAD || from >= SEG) return;
    const done = h.write(zeros, 0, CHUNK, from).then(() => {
      zeroed = from + CHUNK;
      chunks++;
    });
    z.zeroing = {
      from,
      done: done.finally(() => {
        z.zeroing = null;
        ahead();
      }),
    };
  };
  const latency: number[] = [];
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let n = 0; n < N; n++) {
    const t = performance.now();
    writingTo = size + SZ;
    while (z.zeroing && writingTo > z.zeroing.from) await z.zeroing.done;
    await h.write(record, 0, SZ, size);
    size += SZ;
    latency.push(performance.now() - t);
    ahead();
  }
  const wall = performance.now() - started;
  const used = process.cpuUsage(cpu);
  while (z.zeroing) await z.zeroing.done;
  await h.close();
  rmSync(path);
  latency.sort((a, b) => a - b);
  const q = (x: number) => Math.round(latency[Math.min(N - 1, Math.floor(N * x))]! * 1000);
  console.log(
    `${mode.padEnd(10)} p50 ${q(0.5)} p90 ${q(0.9)} p99 ${q(0.99)} max ${q(1)} µs; mean ${Math.round((1000 * wall) / N)} µs; ` +
      `CPU ${Math.round((used.user + used.system) / N)} µs/append; zero chunks ${chunks}`,
  );
}

try {
  for (let r = 0; r < rounds; r++) {
    for (const mode of ["fallocate", "ahead", "prefilled"] as const) await run(mode);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
