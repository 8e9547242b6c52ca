import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { Value } from "@sinclair/typebox/value";
import { SluiceConfig } from "./schema.ts";

/** One problem found in a config file: where, and why. */
export interface ConfigProblem {
  path: string;
  message: string;
}

/** A config file that cannot be used; `sluice` exits with code 2 on it. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: ConfigProblem[],
  ) {
    super(
      `invalid config ${file}:\n${problems.map((p) => `  ${p.path || "/"}: ${p.message}`).join("\n")}`,
    );
    this.name = "ConfigError";
  }
}

export interface LoadedConfig {
  config: SluiceConfig;
  /** Absolute path of the file the config was read from. */
  file: string;
  /** Things worth a warning at start (plaintext keys). */
  warnings: string[];
}

/** Where the config lives: `--config`, else `SLUICE_CONFIG`, else `./sluice.yaml`. */
export function configPath(
  flag: string | undefined,
  env = process.env,
): {
  file: string;
  explicit: boolean;
} {
  // An empty variable counts as unset, as for the other overrides.
  const given = flag ?? (env.SLUICE_CONFIG || undefined);
  return { file: resolve(given ?? "sluice.yaml"), explicit: given !== undefined };
}

/** Reads, validates and resolves a config file. Throws ConfigError listing every problem. */
export function loadConfig(file: string, env = process.env): LoadedConfig {
  if (!existsSync(file)) throw new ConfigError(file, [{ path: "", message: "file not found" }]);
  let raw: unknown;
  try {
    raw = Bun.YAML.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new ConfigError(file, [
      { path: "", message: `not valid YAML: ${(err as Error).message}` },
    ]);
  }
  return parseConfig(raw ?? {}, file, env);
}

/** Validates an already-parsed config object; paths resolve against the folder of `file`. */
export function parseConfig(raw: unknown, file: string, env = process.env): LoadedConfig {
  const value = Value.Default(SluiceConfig, structuredClone(raw));
  const problems: ConfigProblem[] = [...Value.Errors(SluiceConfig, value)].map((e) => ({
    path: e.path,
    message: e.message,
  }));
  if (problems.length > 0) throw new ConfigError(file, dedupeProblems(problems));
  const config = value as SluiceConfig;
  problems.push(...crossCheck(config));
  applyEnv(config, env, problems);
  if (problems.length > 0) throw new ConfigError(file, problems);

  const base = dirname(file);
  const rel = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  config.server.dataDir = env.SLUICE_DATA_DIR
    ? resolve(env.SLUICE_DATA_DIR)
    : rel(config.server.dataDir);
  for (const fn of config.functions) fn.file = rel(fn.file);
  for (const con of config.connections) {
    if (con.destination.type === "file") con.destination.path = rel(con.destination.path);
  }

  const warnings = config.sources.flatMap((s) =>
    s.writeKeys
      .filter((k) => k.key !== undefined)
      .map((k) => `source ${s.id}: write key ${k.id} is in plaintext; store its hash instead`),
  );
  return { config, file, warnings };
}

function crossCheck(config: SluiceConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const sourceIds = new Set<string>();
  const keyIds = new Set<string>();
  config.sources.forEach((s, i) => {
    if (sourceIds.has(s.id)) problems.push({ path: `/sources/${i}/id`, message: "duplicate id" });
    sourceIds.add(s.id);
    s.writeKeys.forEach((k, j) => {
      const path = `/sources/${i}/writeKeys/${j}`;
      if (keyIds.has(k.id)) problems.push({ path: `${path}/id`, message: "duplicate key id" });
      keyIds.add(k.id);
      if ((k.hash === undefined) === (k.key === undefined)) {
        problems.push({ path, message: "needs exactly one of hash or key" });
      }
    });
  });
  const fnIds = new Set(config.functions.map((f) => f.id));
  const conIds = new Set<string>();
  config.connections.forEach((c, i) => {
    if (conIds.has(c.id)) problems.push({ path: `/connections/${i}/id`, message: "duplicate id" });
    conIds.add(c.id);
    if (!sourceIds.has(c.source)) {
      problems.push({ path: `/connections/${i}/source`, message: `unknown source ${c.source}` });
    }
    c.functions.forEach((f, j) => {
      if (!fnIds.has(f)) {
        problems.push({
          path: `/connections/${i}/functions/${j}`,
          message: `unknown function ${f}`,
        });
      }
    });
  });
  return problems;
}

function applyEnv(config: SluiceConfig, env: NodeJS.ProcessEnv, problems: ConfigProblem[]) {
  if (env.PORT !== undefined && env.PORT !== "") {
    const port = Number(env.PORT);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      problems.push({ path: "$PORT", message: "must be an integer port" });
    } else config.server.port = port;
  }
  const level = env.SLUICE_LOG_LEVEL;
  if (level !== undefined && level !== "") {
    const levels = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];
    if (!levels.includes(level)) {
      problems.push({ path: "$SLUICE_LOG_LEVEL", message: `must be one of ${levels.join(", ")}` });
    } else config.logger.level = level as SluiceConfig["logger"]["level"];
  }
}

/** TypeBox reports a union failure once per member; keep one line per path and message. */
function dedupeProblems(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const k = `${p.path}\0${p.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
