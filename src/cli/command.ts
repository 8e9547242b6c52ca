import type { ParseArgsOptionsConfig } from "node:util";

/**
 * A mistake on the command line (unknown command or option, a missing value): exit 2,
 * the message and the command's usage on stderr.
 */
export class UsageError extends Error {
  constructor(
    message: string,
    /** The usage text to print under the message. */
    readonly usage: string,
  ) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * A failure the user can act on, said in one line without a stack trace (a folder that
 * does not exist, a read-only file): exit `exitCode`.
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = "CliError";
  }
}

/** The parsed values of a command's options: strings for `string` options, else booleans. */
export type OptionValues<O extends ParseArgsOptionsConfig> = {
  [K in keyof O]?: O[K]["type"] extends "string"
    ? string
    : O[K]["type"] extends "boolean"
      ? boolean
      : string | boolean;
};

/** One `sluice` command: the words that name it, its options and what it runs. */
export interface Command<O extends ParseArgsOptionsConfig = ParseArgsOptionsConfig> {
  /** The words that name it, space-separated: `"keys create"`. */
  name: string;
  /** Its options, as `util.parseArgs` takes them (`--help` is added to every command). */
  options: O;
  /** Takes positional words after its name (`sluice help keys create`); none otherwise. */
  operands?: boolean;
  /** Left out of the help overview (the function host the server starts). */
  hidden?: boolean;
  /** Runs it; resolves to the exit code. */
  run(values: OptionValues<O>, operands: string[]): number | Promise<number>;
}

/** A command with its option types checked against `run`, for the command table. */
export function command<const O extends ParseArgsOptionsConfig>(spec: Command<O>): Command {
  return spec as unknown as Command;
}
