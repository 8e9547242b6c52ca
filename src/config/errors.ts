/**
 * What a config error is, apart from how problems are found (problems.ts), so that
 * the CLI can report one without loading the schema.
 */

/** One thing wrong with a config: where (path, and line/column in the file) and why. */
export interface ConfigProblem {
  /** `sources[0].writeKeys[1].type`; empty for the file as a whole, `$PORT` for a variable. */
  path: string;
  message: string;
  /** 1-based line and column in the file, when known. */
  line?: number;
  column?: number;
}

/** A config file that cannot be used; `sluice` exits with code 2 on it. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: ConfigProblem[],
  ) {
    super(`invalid config ${file}:\n${problems.map((p) => `  ${formatProblem(p)}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/** `sources[0].id (line 4, column 7): duplicate id`; a problem of the whole file without a path. */
export function formatProblem(p: ConfigProblem): string {
  const pos = p.line === undefined ? "" : `line ${p.line}, column ${p.column}`;
  // A message of several lines (the kinds of a destination) continues indented.
  const message = p.message.replaceAll("\n", "\n      ");
  if (!p.path) return pos ? `${pos}: ${message}` : message;
  return `${p.path}${pos ? ` (${pos})` : ""}: ${message}`;
}
