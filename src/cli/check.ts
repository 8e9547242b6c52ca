import { readFileSync } from "node:fs";
import { configPath, formatProblem, loadConfig } from "../config/load.ts";
import type { SluiceConfig } from "../config/schema.ts";
import { duplicateKeys } from "../config/yaml.ts";
import { checkFunctions } from "../functions/check.ts";
import { redactedServer } from "../log/nats/servers.ts";

/**
 * `sluice check`: validates the config and loads every function; 2 when anything fails.
 * Also warns about what a valid file may still hide: plaintext keys, duplicate keys.
 */
export async function check(configFlag: string | undefined): Promise<number> {
  const loaded = loadConfig(configPath(configFlag).file);
  const broken = await checkFunctions(loaded.config, loaded.file);
  for (const f of broken) {
    console.error(
      `function ${f.id} failed to load from ${f.file}: ${f.error!.name}: ${f.error!.message}`,
    );
  }
  if (broken.length > 0) return 2;
  const { config } = loaded;
  console.log(
    `config ${loaded.file} is valid: ${config.sources.length} source(s), ` +
      `${config.connections.length} connection(s), ${config.functions.length} function(s)`,
  );
  console.log(storageSummary(config));
  for (const w of loaded.warnings) console.log(`warning: ${w}`);
  for (const p of duplicateKeys(readFileSync(loaded.file, "utf8"))) {
    console.log(`warning: ${formatProblem(p)}`);
  }
  return 0;
}

/** Where events and state live, as the config says (servers without credentials). */
function storageSummary(config: SluiceConfig): string {
  const { log, state } = config;
  const logPart =
    log.backend === "nats"
      ? `log: nats stream ${log.stream} (subjects ${log.subjectPrefix}.<sourceId>, ` +
        `${log.replicas} replica(s), duplicate window ${log.duplicateWindowSeconds} s) on ` +
        log.servers.map(redactedServer).join(", ")
      : `log: file (${config.server.dataDir}/log)`;
  const statePart =
    state.backend === "redis"
      ? `state: redis (key prefix ${state.keyPrefix})`
      : "state: file (data dir)";
  return `${logPart}; ${statePart}`;
}
