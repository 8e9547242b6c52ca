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
  if (config.log.backend === "nats") return natsConnectionsReport(config);
  const offsets = readOffsets(config.server.dataDir);
  const state = await openCliState(config, { logger: cliLogger(), readOnly: true });
  const counts = await state.deadLetters.counts().finally(() => state.close());
  return config.connections.filter(isServerSide).map((c) =>
    connectionStatus(config.server.dataDir, c, offsets.get(c.id), {
      deadLetters: counts.get(c.id)?.events ?? 0,
    }),
  );
}

/**
 * With the log in NATS: each connection's backlog from its durable consumer on the
 * stream (the server's counters, shared by every instance), dead letters from
 * `state.backend`. A connection whose consumer does not exist yet is "not started".
 */
async function natsConnectionsReport(config: SluiceConfig): Promise<ConnectionStatus[]> {
  const { NatsLogStream } = await import("../log/nats/nats-log.ts");
  const { natsLogOptions } = await import("../log/nats/options.ts");
  const logger = cliLogger();
  const log = await NatsLogStream.open({
    ...natsLogOptions(config.log, logger),
    openWaitMs: 5_000,
  });
  const state = await openCliState(config, { logger, readOnly: true });
  try {
    if (!log.healthy()) throw new Error(`cannot read the event log: ${log.health().error}`);
    const counts = await state.deadLetters.counts();
    const now = Date.now();
    const rows: ConnectionStatus[] = [];
    for (const c of config.connections.filter(isServerSide)) {
      const backlog = await log.backlog(c.id, c.source);
      rows.push({
        id: c.id,
        source: c.source,
        destination: c.destination.type,
        offset: null,
        started: backlog !== undefined,
        lagEvents: backlog?.records ?? 0,
        lagSeconds:
          backlog?.oldestAt === undefined ? 0 : Math.max(0, (now - backlog.oldestAt) / 1000),
        deadLetters: counts.get(c.id)?.events ?? 0,
      });
    }
    return rows;
  } finally {
    await state.close();
    await log.close();
  }
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
    r.offset || r.started ? String(r.lagEvents) : "not started",
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
