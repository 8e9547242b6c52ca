import { existsSync, readdirSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import type { StoredEvent } from "../../events/schema.ts";
import { type DeadLetterStore, originOf } from "./interface.ts";

interface LegacyLine {
  at?: string;
  reason?: string;
  attempts?: number;
  event: StoredEvent;
}

/**
 * Moves dead letters of sluice 0.1 (`<dataDir>/dead-letter/<conId>.ndjson`, one event a
 * line, which nothing could redrive) into the store, one letter per event, and renames
 * each file to `.imported` so it is read once.
 */
export async function importLegacyDeadLetters(
  dataDir: string,
  store: DeadLetterStore,
  logger: Logger,
): Promise<void> {
  const dir = join(dataDir, "dead-letter");
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    if (!name.endsWith(".ndjson")) continue;
    const connectionId = name.slice(0, -".ndjson".length);
    const file = join(dir, name);
    let imported = 0;
    for (const line of readFileSync(file, "utf8").split("\n")) {
      if (!line.trim()) continue;
      let parsed: LegacyLine;
      try {
        parsed = JSON.parse(line) as LegacyLine;
      } catch {
        logger.warn({ file }, "skipped an unreadable line of an old dead-letter file");
        continue;
      }
      const at = Date.parse(parsed.at ?? "");
      await store.add({
        connectionId,
        stage: "destination",
        events: [parsed.event],
        origins: [originOf(parsed.event)],
        failure: { message: parsed.reason ?? "unknown" },
        attempts: parsed.attempts ?? 1,
        at: Number.isNaN(at) ? undefined : at,
      });
      imported++;
    }
    renameSync(file, `${file}.imported`);
    logger.info({ connectionId, events: imported, file }, "old dead-letter file imported");
  }
}
