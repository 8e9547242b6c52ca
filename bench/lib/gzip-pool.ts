import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";

/** The event every scenario sends, with `@ID@` where its messageId goes (shared with the Lua). */
export const EVENT_TEMPLATE = join(import.meta.dir, "..", "lua", "event.json.tmpl");

const BATCH_PRE = '{"sentAt":"2025-06-01T12:00:01.000Z","batch":[';

/**
 * Writes `count` distinct gzipped batches of `size` events to `file` (bodies back to
 * back) and their byte lengths to `file.idx`, one a line, for events.lua's gzip mode.
 * wrk's LuaJIT has no zlib, so gzip bodies are made here; every messageId in the pool
 * is unique, and the Lua script counts it if a run ever wraps around the pool.
 */
export function writeGzipPool(file: string, count: number, size: number): number {
  const [pre, post] = readFileSync(EVENT_TEMPLATE, "utf8").trim().split("@ID@") as [string, string];
  const fd = openSync(file, "w");
  const lengths: number[] = [];
  let bytes = 0;
  try {
    for (let n = 1; n <= count; n++) {
      const events: string[] = [];
      // Random UUIDs, as Segment's libraries send: unique, and as incompressible as real ids.
      for (let i = 1; i <= size; i++) events.push(`${pre}${crypto.randomUUID()}${post}`);
      const body = Bun.gzipSync(`${BATCH_PRE}${events.join(",")}]}`);
      writeSync(fd, body);
      lengths.push(body.byteLength);
      bytes += body.byteLength;
    }
  } finally {
    closeSync(fd);
  }
  writeFileSync(`${file}.idx`, `${lengths.join("\n")}\n`);
  return bytes;
}
