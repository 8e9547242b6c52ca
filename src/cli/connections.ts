import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { SluiceConfig } from "../config/schema.ts";
import { isServerSide } from "../delivery/manager.ts";
import { type ConnectionStatus, connectionStatus } from "../delivery/status.ts";
import type { LogPosition } from "../log/interface.ts";
import { openCliState } from "../state/backend.ts";
import { cliLogger } from "./deadletters.ts";

/** Saved offsets, read without writing (the server may be running). */
function readOffsets(dataDir: string): Map<string, LogPosition> {
  const file = join(dataDir, "state.db");
  const offsets = new Map<string, LogPosition>();
  if (!existsSync(file)) return offsets;
  const db = new Database(file, { readonly: true });
  try {
    const rows = db
      .query<{ connection_id: string; segment: number; offset: number }, []>(
        "SELECT connection_id, segment, offset FROM connection_offsets",
      )
      .all();
    for (const r of rows) offsets.set(r.connection_id, { segment: r.segment, offset: r.offset });
  } catch {
    // No table yet: no connection has run.
  } finally {
    db.close();
  }
  return offsets;
}

/** `sluice connections`: each server-side connection's lag and dead letters. */
export async function connectionsReport(config: SluiceConfig): Promise<ConnectionStatus[]> {
  const offsets = readOffsets(config.server.dataDir);
  const state = await openCliState(config, { logger: cliLogger(), readOnly: true });
  const counts = await state.deadLetters.counts().finally(() => state.close());
  return config.connections.filter(isServerSide).map((c) =>
    connectionStatus(config.server.dataDir, c, offsets.get(c.id), {
      deadLetters: counts.get(c.id)?.events ?? 0,
    }),
  );
}

export function formatConnections(rows: ConnectionStatus[]): string {
  if (rows.length === 0) return "no server-side connections";
  const header = [
    "CONNECTION",
    "SOURCE",
    "DESTINATION",
    "LAG EVENTS",
    "LAG SECONDS",
    "DEAD LETTERS",
  ];
  const lines = rows.map((r) => [
    r.id,
    r.source,
    r.destination,
    r.offset ? String(r.lagEvents) : "not started",
    r.lagSeconds.toFixed(1),
    String(r.deadLetters),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  return [header, ...lines]
    .map((l) =>
      l
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
