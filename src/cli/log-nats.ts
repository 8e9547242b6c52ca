import type { NatsLogOptions } from "../log/nats/nats-log.ts";
import { NatsLogStream } from "../log/nats/nats-log.ts";
import type { StartAt } from "../log/stream.ts";

export interface NatsTailOptions {
  nats: NatsLogOptions;
  fromStart: boolean;
  follow: boolean;
  source?: string;
  /** Events to show from the end when not from the start. */
  lines: number;
  write: (line: string) => void;
  /** Stops following when aborted. */
  signal?: AbortSignal;
}

const PAGE = 500;

/**
 * `sluice log tail` with `log.backend: nats`: the stream's events as NDJSON through a
 * reader of its own (an ephemeral consumer, deleted when done; it acks nothing, so
 * delivery is not touched). The last `lines` events start right before the stream's
 * end; with `--source` the source's events are read from the oldest and the last ones
 * kept (as the file log's tail does).
 */
export async function tailNatsLog(opts: NatsTailOptions): Promise<void> {
  const log = await NatsLogStream.open({ ...opts.nats, openWaitMs: 5_000 });
  try {
    if (!log.healthy()) throw new Error(`cannot read the event log: ${log.health().error}`);
    let start: StartAt = "oldest";
    if (!opts.fromStart && opts.source === undefined) {
      const { state } = await log.use().jsm.streams.info(opts.nats.stream);
      const after = state.last_seq - opts.lines;
      if (after >= state.first_seq) start = { after: String(after) };
    }
    const reader = await log.reader({ start, sourceId: opts.source });
    const decoder = new TextDecoder();
    try {
      const keepLast = !opts.fromStart && opts.source !== undefined;
      const last: string[] = [];
      for (;;) {
        const page = await reader.read(PAGE, 0);
        for (const r of page) {
          const text = decoder.decode(r.payload);
          if (!keepLast) opts.write(text);
          else {
            last.push(text);
            if (last.length > opts.lines) last.shift();
          }
        }
        if (page.length === 0) break;
      }
      for (const line of last) opts.write(line);
      while (opts.follow && !opts.signal?.aborted) {
        for (const r of await reader.read(PAGE, 1_000)) opts.write(decoder.decode(r.payload));
      }
    } finally {
      await reader.close();
    }
  } finally {
    await log.close();
  }
}
