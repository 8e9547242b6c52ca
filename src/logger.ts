import pino, { type Logger } from "pino";

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

/** pino JSON logs to stdout (or a given stream), secrets redacted. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { app: "sluice" },
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
