import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseCommandLine } from "../../src/cli/args.ts";
import { UsageError } from "../../src/cli/command.ts";
import { COMMANDS } from "../../src/cli/commands.ts";
import { makeTestConfig, runCli } from "../support/server.ts";

// SPEC 10: unknown commands or flags and a missing flag value are errors (exit 2, usage
// on stderr), never ignored.

const made = makeTestConfig();
afterAll(() => rmSync(made.dir, { recursive: true, force: true }));

/** The UsageError parsing `argv` throws (the test fails if it parses). */
function usageError(argv: string[]): UsageError {
  try {
    parseCommandLine(argv, COMMANDS);
  } catch (err) {
    if (err instanceof UsageError) return err;
    throw err;
  }
  throw new Error(`sluice ${argv.join(" ")} parsed without error`);
}

test("each kind of mistake is refused with a message naming it and the command's usage", () => {
  const cases: [string[], RegExp, RegExp][] = [
    [
      ["serve", "--port", "18105"],
      /^unknown option --port for sluice serve/,
      /^Usage: sluice serve/,
    ],
    [["check", "--confg", "x"], /--confg .*did you mean --config\?/, /^Usage: sluice check/],
    [["check", "--config"], /^option --config needs a value$/, /^Usage: sluice check/],
    [["check", "--config", "--json"], /^option --config needs a value/, /^Usage: sluice check/],
    [["keys", "list", "--json=yes"], /^option --json takes no value$/, /^Usage: sluice keys list/],
    [["log", "tail", "--from-start", "-x"], /^unknown option -x for sluice log tail/, /^Usage/],
    // An option of another command is no option of this one.
    [["keys", "list", "--follow"], /^unknown option --follow for sluice keys list/, /^Usage/],
    [["check", "extra"], /^sluice check takes no argument "extra"/, /^Usage: sluice check/],
    [["frobnicate"], /^unknown command: frobnicate$/, /^sluice .*\n\nUsage: sluice <command>/],
    [["keys", "frob"], /^unknown command: keys frob$/, /^Usage: sluice keys list\|create\|revoke/],
    [["keys"], /^sluice keys needs one of: list, create, revoke$/, /keys create --source ID/],
    [["log"], /^sluice log needs one of: tail, verify$/, /log tail \[--from-start\]/],
    [[], /^no command given$/, /Usage: sluice <command>/],
    [["--port", "1"], /^unknown option --port$/, /Usage: sluice <command>/],
    [["--version", "--config", "x"], /^no command given$/, /Usage: sluice <command>/],
  ];
  for (const [argv, message, usage] of cases) {
    const err = usageError(argv);
    expect({ argv, message: err.message }).toEqual({
      argv,
      message: expect.stringMatching(message),
    });
    expect({ argv, usage: err.usage }).toEqual({ argv, usage: expect.stringMatching(usage) });
  }
});

test("options parse wherever they stand, in every form util.parseArgs knows", () => {
  const parse = (argv: string[]) => {
    const inv = parseCommandLine(argv, COMMANDS);
    if (inv.kind !== "run") throw new Error(inv.kind);
    return { name: inv.command.name, values: inv.values, operands: inv.operands };
  };
  expect(parse(["--config", "a.yaml", "log", "tail", "-n", "5", "-f"])).toEqual({
    name: "log tail",
    values: { config: "a.yaml", n: "5", follow: true },
    operands: [],
  });
  expect(parse(["keys", "create", "--source=web", "--type", "server", "--quiet"]).values).toEqual({
    source: "web",
    type: "server",
    quiet: true,
  });
  expect(parse(["log", "tail", "-n3"]).values).toEqual({ n: "3" });
  expect(parse(["help", "keys", "create"])).toEqual({
    name: "help",
    values: {},
    operands: ["keys", "create"],
  });
  expect(parseCommandLine(["--version"], COMMANDS)).toEqual({ kind: "version" });
  const help = parseCommandLine(["serve", "--help"], COMMANDS);
  expect(help.kind === "help" && help.text).toStartWith("Usage: sluice serve");
});

test("a mistake exits 2 with the reason and usage on stderr, and does nothing", async () => {
  // Before this was refused, `serve --port 18105` bound 8080 and `check --confg x`
  // validated ./sluice.yaml; here neither may start or read anything.
  const cases = [
    ["serve", "--port", "18105", "--config", made.configFile],
    ["check", "--confg", made.configFile],
    ["check", "--config"],
    ["keys", "create", "--source", "web", "--type"],
    ["keys", "revoke", "--key", "wk_other", "--config", made.configFile],
    ["log", "tail", "--lines", "5", "--config", made.configFile],
    ["log", "tail", "-n", "many", "--config", made.configFile],
    ["connections", "--jsn", "--config", made.configFile],
    ["health", "--port", "1"],
    ["nope"],
    ["keys"],
    [],
  ];
  const before = readFileSync(made.configFile, "utf8");
  const results = await Promise.all(cases.map((argv) => runCli(argv, { PORT: "0" }, made.dir)));
  results.forEach((res, i) => {
    const argv = cases[i]!;
    expect({ argv, code: res.code, stdout: res.stdout }).toEqual({ argv, code: 2, stdout: "" });
    expect(res.stderr).toStartWith("error: ");
    expect(res.stderr).toMatch(/Usage: sluice/);
    expect(res.stderr).not.toContain("    at "); // no stack trace
  });
  expect(results[1]!.stderr).toContain("did you mean --config?");
  expect(readFileSync(made.configFile, "utf8")).toBe(before);
  expect(existsSync(made.dataDir)).toBe(false);
}, 30_000);

test("init into a folder that does not exist says so in one line (exit 1), no stack", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sluice-usage-"));
  try {
    const file = join(dir, "missing", "sluice.yaml");
    const res = await runCli(["init", "--config", file], { SLUICE_CONFIG: "" }, dir);
    expect(res.code).toBe(1);
    expect(res.stdout).toBe("");
    expect(res.stderr.trim()).toBe(
      `cannot create ${file}: the folder ${join(dir, "missing")} does not exist ` +
        `(create it first: mkdir -p ${join(dir, "missing")})`,
    );
    expect(existsSync(join(dir, "missing"))).toBe(false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
