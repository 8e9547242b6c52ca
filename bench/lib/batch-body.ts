import { readFileSync } from "node:fs";
import { join } from "node:path";

/** The load's event (bench/lua/event.json.tmpl), split where its messageId goes. */
const [head, tail] = readFileSync(join(import.meta.dir, "..", "lua", "event.json.tmpl"), "utf8")
  .trim()
  .split("@ID@") as [string, string];

/**
 * Bodies of `size`-event batches as wrk sends them, each with messageIds no other body
 * of this process has (for in-process experiments that skip HTTP).
 */
export function batchBodies(size: number): () => string {
  let n = 0;
  return () => {
    const parts: string[] = new Array(size);
    n++;
    for (let i = 0; i < size; i++)
      parts[i] = `${head}${(n * 1031 + i).toString(16)}-${n}-${i}${tail}`;
    return `{"sentAt":"2025-06-01T12:00:01.000Z","batch":[${parts.join(",")}]}`;
  };
}
