import type { Logger } from "pino";
import { configPath } from "../config/load.ts";
import type { SluiceConfig } from "../config/schema.ts";
import type { DeadLetter } from "../delivery/dead-letters/interface.ts";
import { openOfflineConnection, serverSideIds } from "../delivery/offline.ts";
import type { RedriveSelection } from "../delivery/redrive.ts";
import { redriveDeadLetters } from "../delivery/redrive.ts";
import { createLogger } from "../logger.ts";
import { prettyStream } from "../logger-pretty.ts";
import { openCliState } from "../state/backend.ts";
import { UsageError } from "./command.ts";
import { usageOf } from "./help.ts";

/** What the commands print to (stdout, stderr). */
export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
}

const stdio: Io = { out: (l) => console.log(l), err: (l) => console.error(l) };

/** Warnings and errors of the work (a function failing, a letter refused) on stderr. */
export function cliLogger(): Logger {
  const color = process.stderr.isTTY === true && !process.env.NO_COLOR;
  return createLogger(
    "warn",
    prettyStream((t) => process.stderr.write(t), color),
  );
}

/**
 * False (the caller exits 2) with the known ids when `id` is not a server-side
 * connection; a UsageError when it is missing.
 */
export function checkConnection(
  config: SluiceConfig,
  id: string | undefined,
  command: string,
  io: Io,
): id is string {
  const known = serverSideIds(config);
  if (id === undefined) throw new UsageError("--connection is required", usageOf([command]));
  if (known.includes(id)) return true;
  io.err(
    `unknown connection ${id}; connections with a server-side destination: ${known.length > 0 ? known.join(", ") : "none"}`,
  );
  return false;
}

/** `sluice deadletters list`: read-only, beside a running server or not. */
export async function listDeadLetters(
  config: SluiceConfig,
  opts: { connection?: string; json?: boolean; limit?: string },
  io: Io = stdio,
): Promise<number> {
  if (!checkConnection(config, opts.connection, "deadletters list", io)) return 2;
  const limit = opts.limit === undefined ? 1000 : Number(opts.limit);
  if (!Number.isInteger(limit) || limit < 1) {
    throw new UsageError(
      `--limit: expected a whole number, got ${opts.limit}`,
      usageOf(["deadletters list"]),
    );
  }
  const state = await openCliState(config, { logger: cliLogger(), readOnly: true });
  let letters: DeadLetter[];
  try {
    letters = await state.deadLetters.list(opts.connection, { limit });
  } finally {
    await state.close();
  }
  if (opts.json) {
    io.out(JSON.stringify(letters, null, 2));
    return 0;
  }
  if (letters.length === 0) {
    io.out(`connection ${opts.connection} has no dead letters`);
    return 0;
  }
  io.out(formatLetters(letters));
  return 0;
}

export function formatLetters(letters: DeadLetter[]): string {
  const header = ["ID", "DEAD-LETTERED", "EVENTS", "ATTEMPTS", "STAGE", "ERROR"];
  const rows = letters.map((l) => [
    l.id,
    new Date(l.createdAt).toISOString().replace(/\.\d+Z$/, "Z"),
    String(l.events.length),
    String(l.attempts),
    l.stage,
    oneLine(l.failure.answer ? `${l.failure.message}: ${l.failure.answer}` : l.failure.message),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows]
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

function oneLine(text: string, max = 120): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

/** `sluice deadletters redrive`: 0 when every letter asked for was delivered, else 1. */
export async function redrive(
  config: SluiceConfig,
  opts: { connection?: string; all?: boolean; id?: string; config?: string },
  io: Io = stdio,
  logger: Logger = cliLogger(),
): Promise<number> {
  if (!checkConnection(config, opts.connection, "deadletters redrive", io)) return 2;
  const ids = (opts.id ?? "").split(",").filter((v) => v.trim() !== "");
  if ((opts.all === true) === ids.length > 0) {
    throw new UsageError("give either --all or --id", usageOf(["deadletters redrive"]));
  }
  const selection: RedriveSelection = opts.all ? { all: true } : { ids };
  const offline = await openOfflineConnection(
    config,
    opts.connection,
    logger,
    configPath(opts.config).file,
  );
  try {
    const report = await redriveDeadLetters(offline.pipeline, offline.deadLetters, selection);
    io.out(
      `${opts.connection}: ${report.delivered} dead letter(s) delivered (${report.events} event(s))`,
    );
    for (const f of report.failed) io.out(`still failing: ${f.id}: ${oneLine(f.error)}`);
    if (report.skipped > 0) {
      io.out(
        `${report.skipped} left untried: the destination is still failing; they stay in the dead letters`,
      );
    }
    for (const id of report.missing) io.out(`no dead letter ${id} on ${opts.connection}`);
    const clean = report.failed.length === 0 && report.skipped === 0 && report.missing.length === 0;
    return clean ? 0 : 1;
  } finally {
    await offline.close();
  }
}
