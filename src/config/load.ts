import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { validNatsServer } from "../log/nats/servers.ts";
import { ConfigError, type ConfigProblem } from "./errors.ts";
import { type ConfigPath, formatPath, schemaProblems, withDefaults } from "./problems.ts";
import { SluiceConfig } from "./schema.ts";

export { configPath } from "./path.ts";

import { type ParsedText, parseConfigText } from "./yaml.ts";

export type { ConfigProblem } from "./errors.ts";
export { ConfigError, formatProblem } from "./errors.ts";

export interface LoadedConfig {
  config: SluiceConfig;
  /** Absolute path of the file the config was read from. */
  file: string;
  /** Things worth a warning at start (plaintext keys). */
  warnings: string[];
}

/** Reads, validates and resolves a config file. Throws ConfigError listing every problem. */
export function loadConfig(file: string, env = process.env): LoadedConfig {
  if (!existsSync(file)) throw new ConfigError(file, [{ path: "", message: "file not found" }]);
  const parsed = parseConfigText(readFileSync(file, "utf8"));
  if ("problems" in parsed) throw new ConfigError(file, parsed.problems);
  return parseConfig(parsed.value ?? {}, file, env, parsed);
}

/**
 * Validates an already-parsed config object; paths resolve against the folder of `file`.
 * With the parsed text, each problem also says its line and column.
 */
export function parseConfig(
  raw: unknown,
  file: string,
  env = process.env,
  text?: ParsedText,
): LoadedConfig {
  const place = (at: ConfigPath, message: string): ConfigProblem => ({
    path: formatPath(at),
    message,
    ...text?.locate(at),
  });
  const value = withDefaults(SluiceConfig, structuredClone(raw));
  const problems = schemaProblems(SluiceConfig, value).map((p) => place(p.at, p.message));
  if (problems.length > 0) throw new ConfigError(file, problems);
  const config = value as SluiceConfig;
  problems.push(...crossCheck(config).map((p) => place(p.at, p.message)));
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
  if (config.log.backend === "nats" && config.state.backend !== "redis") {
    warnings.push(
      "log.backend is nats but state.backend is file: dedup keys, rate limits, dead letters and " +
        "the function store stay per instance (a messageId sent to two instances more than " +
        `${config.log.duplicateWindowSeconds} s apart is stored twice); use state.backend: redis for several instances`,
    );
  }
  return { config, file, warnings };
}

function crossCheck(config: SluiceConfig): { at: ConfigPath; message: string }[] {
  const problems: { at: ConfigPath; message: string }[] = [];
  const sourceIds = new Set<string>();
  const keyIds = new Set<string>();
  config.sources.forEach((s, i) => {
    if (sourceIds.has(s.id)) problems.push({ at: ["sources", i, "id"], message: "duplicate id" });
    sourceIds.add(s.id);
    s.writeKeys.forEach((k, j) => {
      const at = ["sources", i, "writeKeys", j];
      if (keyIds.has(k.id)) problems.push({ at: [...at, "id"], message: "duplicate key id" });
      keyIds.add(k.id);
      if ((k.hash === undefined) === (k.key === undefined)) {
        problems.push({ at, message: "needs exactly one of hash or key" });
      }
    });
  });
  if (config.log.backend === "nats") {
    config.log.servers.forEach((server, i) => {
      if (!validNatsServer(server)) {
        problems.push({
          at: ["log", "servers", i],
          message: "must be nats://host:port, tls://host:port or host:port",
        });
      }
    });
  }
  const fnIds = new Set(config.functions.map((f) => f.id));
  const conIds = new Set<string>();
  config.connections.forEach((c, i) => {
    if (conIds.has(c.id)) problems.push({ at: ["connections", i, "id"], message: "duplicate id" });
    conIds.add(c.id);
    if (!sourceIds.has(c.source)) {
      const known = [...sourceIds].join(", ") || "none";
      problems.push({
        at: ["connections", i, "source"],
        message: `unknown source ${c.source} (sources: ${known})`,
      });
    }
    c.functions.forEach((f, j) => {
      if (!fnIds.has(f)) {
        problems.push({ at: ["connections", i, "functions", j], message: `unknown function ${f}` });
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
