import { type ParseArgsOptionsConfig, parseArgs } from "node:util";
import { type Command, UsageError } from "./command.ts";
import { HELP, helpText, usageOf } from "./help.ts";

/** What the command line asks for. */
export type Invocation =
  | { kind: "run"; command: Command; values: Record<string, string | boolean>; operands: string[] }
  | { kind: "help"; text: string }
  | { kind: "version" };

const HELP_OPTION = { help: { type: "boolean", short: "h" } } as const;
const VERSION_OPTION = { version: { type: "boolean" } } as const;

/**
 * Parses `sluice <command words…> [options]` against the command table with
 * `util.parseArgs` in strict mode: an unknown command or option, an option without
 * its value, or a stray word is a UsageError (exit 2), never ignored.
 */
export function parseCommandLine(argv: string[], commands: Command[]): Invocation {
  if (argv.length === 0) throw new UsageError("no command given", HELP);
  // A first, lenient pass over every known option finds the command words wherever the
  // options stand; the strict pass then holds the command to its own options.
  const all: ParseArgsOptionsConfig = { ...HELP_OPTION, ...VERSION_OPTION };
  for (const c of commands) Object.assign(all, c.options);
  const loose = parseArgs({ args: argv, options: all, strict: false, allowPositionals: true });
  const words = loose.positionals;
  if (loose.values.help === true) return { kind: "help", text: helpText(words) };
  const command = findCommand(words, commands);
  if (!command) {
    // Name an option unknown to sluice before its value is taken for a command word.
    strictParse(argv, all, undefined, HELP);
    if (words.length === 0) {
      if (loose.values.version === true && argv.length === 1) return { kind: "version" };
      throw new UsageError("no command given", HELP);
    }
    // The longest run of leading words that names a group (keys, admin token).
    const group = groupOf(words, commands);
    const usage = group ? usageOf(group.words) : HELP;
    if (group && group.words.length === words.length) {
      const name = group.words.join(" ");
      throw new UsageError(`sluice ${name} needs one of: ${group.next.join(", ")}`, usage);
    }
    throw new UsageError(`unknown command: ${words.join(" ")}`, usage);
  }
  const usage = usageOf([command.name]);
  const parsed = strictParse(argv, { ...command.options, ...HELP_OPTION }, command.name, usage);
  const operands = parsed.positionals.slice(command.name.split(" ").length);
  if (operands.length > 0 && !command.operands) {
    const hint = operands[0]!.startsWith("-") ? "" : " (options start with --)";
    throw new UsageError(
      `sluice ${command.name} takes no argument ${JSON.stringify(operands[0])}${hint}`,
      usage,
    );
  }
  const values = parsed.values as Record<string, string | boolean>;
  return { kind: "run", command, values, operands };
}

function strictParse(
  argv: string[],
  options: ParseArgsOptionsConfig,
  name: string | undefined,
  usage: string,
) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError(describe(err as Error, name, options), usage);
  }
}

/** The group named by the longest run of leading words, with the words that may follow. */
function groupOf(words: string[], commands: Command[]) {
  for (let n = words.length; n > 0; n--) {
    const prefix = `${words.slice(0, n).join(" ")} `;
    const next = commands
      .filter((c) => c.name.startsWith(prefix))
      .map((c) => c.name.slice(prefix.length).split(" ")[0]!);
    if (next.length > 0) return { words: words.slice(0, n), next: [...new Set(next)] };
  }
  return undefined;
}

/** The command whose name is the longest run of leading words. */
function findCommand(words: string[], commands: Command[]): Command | undefined {
  for (let n = words.length; n > 0; n--) {
    const name = words.slice(0, n).join(" ");
    const found = commands.find((c) => c.name === name);
    if (found) return found;
  }
  return undefined;
}

/** util.parseArgs' error in sluice's words: which option, what is wrong, what would do. */
function describe(
  err: Error,
  command: string | undefined,
  options: ParseArgsOptionsConfig,
): string {
  const code = (err as { code?: string }).code;
  const unknown = /Unknown option '([^']+)'/.exec(err.message)?.[1];
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && unknown) {
    const name = unknown.replace(/^-+/, "");
    const near = Object.keys(options).find(
      (o) => name.length > 2 && distance(o, name) <= (name.length > 4 ? 2 : 1),
    );
    const hint = near ? `; did you mean --${near}?` : "";
    if (!command) return `unknown option ${unknown}${hint}`;
    const known = Object.keys(options).map((o) => `--${o}`);
    return `unknown option ${unknown} for sluice ${command}${hint} (its options: ${known.join(", ")})`;
  }
  const option = /Option '(?:-\w, )?(--[\w-]+)/.exec(err.message)?.[1];
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && option) {
    if (/does not take an argument/.test(err.message)) return `option ${option} takes no value`;
    if (/ambiguous/.test(err.message)) {
      return `option ${option} needs a value (to give one that starts with -, write ${option}=VALUE)`;
    }
    return `option ${option} needs a value`;
  }
  return err.message.split("\n")[0]!;
}

/** Levenshtein distance, for "did you mean" on a mistyped option. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        prev[j]! + 1,
        row[j - 1]! + 1,
        prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = row;
  }
  return prev[b.length]!;
}
