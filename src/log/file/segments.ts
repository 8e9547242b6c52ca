import { closeSync, existsSync, fstatSync, openSync, readdirSync, readSync } from "node:fs";
import { join } from "node:path";

const SEGMENT_RE = /^(\d{20})\.seg$/;

export function segmentPath(dir: string, segment: number): string {
  return join(dir, `${String(segment).padStart(20, "0")}.seg`);
}

/** Segment numbers present in `dir`, ascending. */
export function listSegments(dir: string): number[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((name) => SEGMENT_RE.exec(name)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

/** Reads bytes `[from, from+max)` of a segment (fewer at its end). */
export function readSegmentBytes(path: string, from: number, max = Number.POSITIVE_INFINITY) {
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    const length = Math.max(0, Math.min(size - from, max));
    const buf = new Uint8Array(length);
    let got = 0;
    while (got < length) {
      const n = readSync(fd, buf, got, length - got, from + got);
      if (n === 0) break;
      got += n;
    }
    return { buf: buf.subarray(0, got), size };
  } finally {
    closeSync(fd);
  }
}
