import {
  closeSync,
  existsSync,
  fdatasyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import type { StoredEvent } from "../events/schema.ts";

/** `<dataDir>/dead-letter/<conId>.ndjson`: one line per event a destination refused. */
export function deadLetterPath(dataDir: string, connectionId: string): string {
  return join(dataDir, "dead-letter", `${connectionId}.ndjson`);
}

/** Appends refused events with the reason, and flushes, before the offset moves past them. */
export function writeDeadLetters(
  dataDir: string,
  connectionId: string,
  events: StoredEvent[],
  reason: string,
  attempts: number,
): void {
  const path = deadLetterPath(dataDir, connectionId);
  mkdirSync(join(dataDir, "dead-letter"), { recursive: true });
  const at = new Date().toISOString();
  const lines = events.map((event) => JSON.stringify({ at, reason, attempts, event })).join("\n");
  const fd = openSync(path, "a");
  try {
    writeSync(fd, `${lines}\n`);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** How many dead letters a connection has. */
export function countDeadLetters(dataDir: string, connectionId: string): number {
  const path = deadLetterPath(dataDir, connectionId);
  if (!existsSync(path)) return 0;
  const text = readFileSync(path, "utf8");
  let n = 0;
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) n++;
  return n;
}
