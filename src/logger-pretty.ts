import type { DestinationStream } from "pino";

const LEVELS: Record<number, [string, string]> = {
  10: ["TRACE", "\x1b[90m"],
  20: ["DEBUG", "\x1b[36m"],
  30: ["INFO ", "\x1b[32m"],
  40: ["WARN ", "\x1b[33m"],
  50: ["ERROR", "\x1b[31m"],
  60: ["FATAL", "\x1b[35m"],
};
const RESET = "\x1b[0m";
const DIM = "\x1b[2m";
/** Fields every line has, shown in the line's head rather than as key=value. */
const HEAD = new Set(["level", "time", "msg", "app", "pid", "hostname"]);

/**
 * Formats one pino JSON line for a terminal: `12:00:00.123 INFO  message key=value …`,
 * an error's stack on the lines below. Lines that are not JSON pass through.
 */
export function formatPretty(line: string, color: boolean): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line);
  } catch {
    return line.endsWith("\n") ? line : `${line}\n`;
  }
  const paint = (code: string, text: string) => (color ? `${code}${text}${RESET}` : text);
  const [name, code] = LEVELS[rec.level as number] ?? [String(rec.level), ""];
  const time = typeof rec.time === "string" ? rec.time.slice(11, 23) : "";
  let out = `${paint(DIM, time)} ${paint(code, name)} ${String(rec.msg ?? "")}`;
  let stack = "";
  for (const [k, v] of Object.entries(rec)) {
    if (HEAD.has(k)) continue;
    if (k === "err" && typeof v === "object" && v !== null && "stack" in v) {
      stack = `\n${String((v as { stack: unknown }).stack).replace(/^/gm, "    ")}`;
      continue;
    }
    const text = typeof v === "string" && /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
    out += ` ${paint(DIM, `${k}=`)}${text}`;
  }
  return `${out}${stack}\n`;
}

/**
 * A pino destination that writes human-readable lines: used when stdout is a terminal.
 * Written in-process rather than as a pino transport, which would need a worker
 * thread and a module on disk, neither of which a compiled binary has.
 */
export function prettyStream(
  write: (text: string) => void = (t) => process.stdout.write(t),
  color = true,
): DestinationStream {
  return { write: (line: string) => write(formatPretty(line, color)) };
}
