/**
 * Segment preallocation (issue 11): the cost of one durable group write (an O_DSYNC
 * pwrite, what FileEventLog does per group commit) at the end of a segment file, when
 * the file
 *   - grows with each write (no preallocation: each write changes the size and
 *     allocates blocks, so the sync also commits metadata),
 *   - was fallocate()d to its full size (blocks reserved as "unwritten" extents: the
 *     size does not change, but ext4 still converts the extent on the first write),
 *   - was zero-filled and synced up front (blocks written: a pure data overwrite).
 *
 *   bun bench/experiments/prealloc.ts [dir] [writes] [bytesPerWrite]
 *
 * Defaults: a temp dir under the system's, 2000 writes of 4 KiB (a small group commit).
 * Light: about 3 x 2000 synchronous writes and one 16 MiB zero-fill.
 */
import { dlopen, FFIType } from "bun:ffi";
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dir = mkdtempSync(join(process.argv[2] ?? tmpdir(), "sluice-prealloc-"));
const writes = Number(process.argv[3] ?? 2000);
const bytes = Number(process.argv[4] ?? 4096);
const size = writes * bytes;

const libc = dlopen("libc.so.6", {
  fallocate: { args: [FFIType.i32, FFIType.i32, FFIType.i64, FFIType.i64], returns: FFIType.i32 },
});

type Mode = "grow" | "fallocate" | "zero-filled";

function prepare(path: string, mode: Mode): void {
  const fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC);
  if (mode === "fallocate") {
    if (libc.symbols.fallocate(fd, 0, 0, size) !== 0) throw new Error("fallocate failed");
  } else if (mode === "zero-filled") {
    const zeros = new Uint8Array(1 << 20);
    for (let at = 0; at < size; at += zeros.byteLength) {
      writeSync(fd, zeros, 0, Math.min(zeros.byteLength, size - at), at);
    }
  }
  Bun.spawnSync(["sync", path]);
  closeSync(fd);
}

function run(mode: Mode): number[] {
  const path = join(dir, `${mode}.seg`);
  prepare(path, mode);
  const fd = openSync(path, constants.O_RDWR | constants.O_DSYNC);
  const record = new Uint8Array(bytes).fill(0x61);
  const times: number[] = [];
  for (let i = 0; i < writes; i++) {
    const t = Bun.nanoseconds();
    writeSync(fd, record, 0, bytes, i * bytes);
    times.push((Bun.nanoseconds() - t) / 1000);
  }
  closeSync(fd);
  rmSync(path);
  return times.sort((a, b) => a - b);
}

const pct = (t: number[], p: number) => t[Math.min(t.length - 1, Math.floor(t.length * p))]!;
console.log(`dir ${dir}, ${writes} O_DSYNC writes of ${bytes} B at the end of the data`);
console.log("mode          mean µs   p50 µs   p99 µs");
try {
  // Twice each, interleaved: the second round is the one reported (warm caches).
  const modes: Mode[] = ["grow", "fallocate", "zero-filled"];
  for (const round of [1, 2]) {
    for (const mode of modes) {
      const t = run(mode);
      if (round === 1) continue;
      const mean = t.reduce((a, b) => a + b, 0) / t.length;
      console.log(
        `${mode.padEnd(12)} ${mean.toFixed(0).padStart(8)} ${pct(t, 0.5).toFixed(0).padStart(8)} ${pct(t, 0.99).toFixed(0).padStart(8)}`,
      );
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
