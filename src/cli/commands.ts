import { configPath } from "../config/path.ts";
import { HOST_COMMAND } from "../functions/entrypoints.ts";
import { type Command, command } from "./command.ts";
import { HELP, helpText } from "./help.ts";

// Every command names its options; util.parseArgs (strict) refuses any other. To add a
// command: an entry here, its help text in help.ts (test/ops/cli.test.ts checks both).
// Each command loads its modules when it runs, so that --help and a usage error answer
// at once, without loading the config schema, the server or the log.

const string = { type: "string" } as const;
const boolean = { type: "boolean" } as const;
const config = { config: string } as const;

const file = (flag: string | undefined) => configPath(flag).file;

/** The `sluice` commands, by the words that name them. */
export const COMMANDS: Command[] = [
  command({
    name: "serve",
    options: config,
    run: async (v) => (await import("./serve.ts")).serve(v.config),
  }),
  command({
    name: "init",
    options: config,
    run: async (v) => (await import("./init.ts")).init(v.config),
  }),
  command({
    name: "check",
    options: config,
    run: async (v) => (await import("./check.ts")).check(v.config),
  }),
  command({
    name: "keys list",
    options: { ...config, source: string, json: boolean },
    run: async (v) =>
      (await import("./keys.ts")).listKeys(file(v.config), { source: v.source, json: v.json }),
  }),
  command({
    name: "keys create",
    options: { ...config, source: string, type: string, id: string, quiet: boolean },
    run: async (v) => (await import("./keys.ts")).createKey(file(v.config), v),
  }),
  command({
    name: "keys revoke",
    options: { ...config, id: string },
    run: async (v) => (await import("./keys.ts")).revokeKey(file(v.config), { id: v.id }),
  }),
  command({
    name: "admin token create",
    options: { ...config, id: string, quiet: boolean },
    run: async (v) =>
      (await import("../admin/token-command.ts")).createAdminToken(file(v.config), {
        id: v.id,
        quiet: v.quiet,
      }),
  }),
  command({
    name: "admin token list",
    options: { ...config, json: boolean },
    run: async (v) =>
      (await import("../admin/token-command.ts")).listAdminTokens(file(v.config), {
        json: v.json,
      }),
  }),
  command({
    name: "log tail",
    options: {
      ...config,
      "from-start": boolean,
      follow: { type: "boolean", short: "f" },
      source: string,
      n: { type: "string", short: "n" },
    },
    run: async (v) => (await import("./log-commands.ts")).tail(v),
  }),
  command({
    name: "log verify",
    options: config,
    run: async (v) => (await import("./log-commands.ts")).verify(v),
  }),
  command({
    name: "connections",
    options: { ...config, json: boolean },
    run: async (v) => {
      const { loadConfig } = await import("../config/load.ts");
      const { connectionsReport, formatConnections } = await import("./connections.ts");
      const rows = await connectionsReport(loadConfig(file(v.config)).config);
      console.log(v.json ? JSON.stringify(rows, null, 2) : formatConnections(rows));
      return 0;
    },
  }),
  command({
    name: "deadletters list",
    options: { ...config, connection: string, json: boolean, limit: string },
    run: async (v) => {
      const { loadConfig } = await import("../config/load.ts");
      return (await import("./deadletters.ts")).listDeadLetters(
        loadConfig(file(v.config)).config,
        v,
      );
    },
  }),
  command({
    name: "deadletters redrive",
    options: { ...config, connection: string, all: boolean, id: string },
    run: async (v) => {
      const { loadConfig } = await import("../config/load.ts");
      return (await import("./deadletters.ts")).redrive(loadConfig(file(v.config)).config, v);
    },
  }),
  command({
    name: "replay",
    options: { ...config, connection: string, from: string, to: string },
    run: async (v) => {
      const { loadConfig } = await import("../config/load.ts");
      return (await import("./replay.ts")).replay(loadConfig(file(v.config)).config, v);
    },
  }),
  command({
    name: "health",
    options: { ...config, url: string },
    run: async (v) => {
      const { checkHealth, healthUrl } = await import("./health.ts");
      return checkHealth(v.url ?? healthUrl(file(v.config)));
    },
  }),
  command({
    name: "help",
    options: {},
    operands: true,
    run: (_, words) => {
      const text = helpText(words);
      if (words.length > 0 && text === HELP) {
        console.error(`unknown command: ${words.join(" ")}\n\n${HELP}`);
        return 2;
      }
      console.log(text);
      return 0;
    },
  }),
  command({
    // The function host process the server starts (src/functions/host.ts).
    name: HOST_COMMAND,
    options: {},
    // Its sandbox's first stage passes a plan on, the second what the first did.
    operands: true,
    hidden: true,
    run: async (_, words) => {
      const { runFunctionHost } = await import("../functions/host.ts");
      runFunctionHost(words);
      return new Promise<number>(() => {});
    },
  }),
];
