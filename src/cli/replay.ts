import type { Logger } from "pino";
import { configPath } from "../config/load.ts";
import type { SluiceConfig } from "../config/schema.ts";
import { openOfflineConnection } from "../delivery/offline.ts";
import { type ReplayPoint, type ReplaySummary, startReplay } from "../delivery/replay.ts";
import { fileReplaySource, parsePosition, streamReplaySource } from "../delivery/replay-source.ts";
import type { NatsLogStream } from "../log/nats/nats-log.ts";
import { UsageError } from "./command.ts";
import { checkConnection, cliLogger, type Io } from "./deadletters.ts";
import { usageOf } from "./help.ts";
import { ProgressBar } from "./progress.ts";

const stdio: Io = { out: (l) => console.log(l), err: (l) => console.error(l) };

/**
 * A time (ISO-8601: `2026-12-01`, `2026-12-01T09:00:00Z`) or a log position: with the
 * file log `<segment>:<offset>` (a point between two events; the inspector shows the
 * point just before each event), with `log.backend: nats` a stream sequence number
 * (the point just after that message).
 */
export function parsePoint(
  name: string,
  text: string,
  backend: "file" | "nats" = "file",
): ReplayPoint {
  if (backend === "file" ? parsePosition(text) : /^\d{1,15}$/.test(text)) return { position: text };
  const time = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(time)) {
    const position =
      backend === "file" ? "a log position (<segment>:<offset>)" : "a stream sequence number";
    throw new UsageError(
      `--${name}: expected an ISO-8601 time (2026-12-01T09:00:00Z) or ${position}, got ${JSON.stringify(text)}`,
      usageOf(["replay"]),
    );
  }
  return { time };
}

export interface ReplayCliOptions {
  connection?: string;
  from?: string;
  to?: string;
  /** The --config flag: the function sandbox must keep the config file out of its copies. */
  config?: string;
}

/** `sluice replay`: 0 when every event in the range went out (or it held none), else 1. */
export async function replay(
  config: SluiceConfig,
  opts: ReplayCliOptions,
  io: Io = stdio,
  logger: Logger = cliLogger(),
  tty = process.stderr.isTTY === true,
): Promise<number> {
  if (!checkConnection(config, opts.connection, "replay", io)) return 2;
  if (opts.from === undefined) throw new UsageError("--from is required", usageOf(["replay"]));
  const backend = config.log.backend === "nats" ? "nats" : "file";
  const from = parsePoint("from", opts.from, backend);
  const to = opts.to === undefined ? undefined : parsePoint("to", opts.to, backend);
  if (to && "time" in to && "time" in from && to.time <= from.time) {
    throw new UsageError("--to must be after --from", usageOf(["replay"]));
  }
  const connection = config.connections.find((c) => c.id === opts.connection)!;
  // With the log in NATS the events are in the stream, not in this data dir: a reader
  // of its own on the stream (as `sluice log tail` and the server's replays read it).
  const stream = backend === "nats" ? await openNatsLog(config, logger) : undefined;
  if (stream && !stream.healthy()) {
    const error = stream.health().error;
    await stream.close();
    io.err(`cannot read the event log (NATS): ${error}`);
    return 1;
  }
  const offline = await openOfflineConnection(
    config,
    connection.id,
    logger,
    configPath(opts.config).file,
  ).catch(async (err) => {
    await stream?.close();
    throw err;
  });
  const bar = tty ? new ProgressBar((t) => process.stderr.write(t)) : undefined;
  let summary: ReplaySummary;
  try {
    const job = await startReplay({
      open: async (start) =>
        stream
          ? streamReplaySource(stream, connection.source, start)
          : fileReplaySource(config.server.dataDir, connection.source, start, (c) =>
              logger.error(c, "replay: corrupt log record skipped"),
            ),
      pipeline: offline.pipeline,
      range: { from, to },
      batchSize: (connection.destination as { batchSize?: number }).batchSize ?? 100,
      onProgress: (p) => bar?.update(p.done, p.total),
    });
    // Ctrl-C stops between events: what was sent stays sent, the summary says how far.
    const interrupt = () => job.stop();
    process.once("SIGINT", interrupt);
    try {
      summary = await job.done;
    } finally {
      process.off("SIGINT", interrupt);
    }
  } finally {
    bar?.finish();
    await offline.close();
    await stream?.close();
  }
  if (summary.total === 0) {
    io.out(`no events of source ${connection.source} in that range: nothing to replay`);
    return 0;
  }
  io.out(formatSummary(connection.id, summary));
  for (const f of summary.failures) {
    const ids = f.messageIds.slice(0, 5).join(", ") + (f.messageIds.length > 5 ? ", …" : "");
    io.out(`failed: ${ids}: ${f.error}`);
  }
  return summary.failed === 0 && summary.stopped === undefined ? 0 : 1;
}

/** The stream of `log.backend: nats`, opened for reading (waits up to 5 s for NATS). */
async function openNatsLog(config: SluiceConfig, logger: Logger): Promise<NatsLogStream> {
  const { NatsLogStream } = await import("../log/nats/nats-log.ts");
  const { natsLogOptions } = await import("../log/nats/options.ts");
  return NatsLogStream.open({ ...natsLogOptions(config.log, logger), openWaitMs: 5_000 });
}

export function formatSummary(connectionId: string, s: ReplaySummary): string {
  const secs = s.elapsedMs / 1000;
  const rate = secs > 0 ? Math.round(s.done / secs) : s.done;
  return (
    `replayed ${s.done} of ${s.total} event(s) through ${connectionId} in ${secs.toFixed(1)} s ` +
    `(${rate}/s): ${s.delivered} delivered, ${s.dropped} dropped by functions, ${s.failed} failed` +
    (s.stopped ? `; ${s.stopped}` : "")
  );
}
