import pino, { type Logger } from "pino";
import { prettyStream } from "./logger-pretty.ts";

/** Header and field names that may carry a write key: never written to a log line. */
export const REDACT_PATHS = [
  "headers.authorization",
  'headers["x-write-key"]',
  "req.headers.authorization",
  'req.headers["x-write-key"]',
  "writeKey",
  "*.writeKey",
  "key",
];

/**
 * Where logs go by default: JSON lines to stdout, or readable lines when stdout is a
 * terminal. `SLUICE_LOG_FORMAT=json|pretty` overrides the guess.
 */
export function defaultDestination(env = process.env): pino.DestinationStream {
  const format = env.SLUICE_LOG_FORMAT;
  const pretty = format === "pretty" || (format !== "json" && process.stdout.isTTY === true);
  if (pretty) return prettyStream(undefined, process.stdout.isTTY === true && !env.NO_COLOR);
  return pino.destination({ dest: 1, sync: false });
}

/** pino JSON logs to stdout (or a given stream), secrets redacted. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { app: "sluice" },
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination ?? defaultDestination(),
  );
}

/**
 * Waits until every line the logger was given is written, then closes its stream: for
 * a process about to exit. (An asynchronous destination's `flush(cb)` answers at once
 * while a write may still be in flight; `end()` waits for it.)
 */
export async function drainLogger(logger: Logger, timeoutMs = 2000): Promise<void> {
  const stream = (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] as
    | { end?: () => void; once?: (event: string, fn: () => void) => void }
    | undefined;
  if (!stream?.end || !stream.once) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    stream.once?.("close", () => {
      clearTimeout(timer);
      resolve();
    });
    stream.end?.();
  });
}
