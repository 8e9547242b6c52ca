import { writeFileSync } from "node:fs";
import { generateWriteKey, hashWriteKey, newKeyId } from "../auth/keys.ts";

export interface InitialConfig {
  yaml: string;
  browserKey: string;
  serverKey: string;
}

/**
 * A starter config: one source with a fresh browser key and server key. Only the
 * keys' hashes go into the file; the keys themselves are returned to print once.
 */
export function initialConfig(): InitialConfig {
  const browserId = newKeyId("browser");
  const serverId = newKeyId("server");
  const browserKey = generateWriteKey(browserId);
  const serverKey = generateWriteKey(serverId);
  const yaml = `# sluice configuration. Reference: README.md, "Configuration".
server:
  port: 8080
  host: 0.0.0.0
  dataDir: ./data
  trustProxy: false
limits: { maxBodyBytes: 1048576, maxBatchEvents: 500, maxEventBytes: 32768 }
dedup: { windowSeconds: 86400 }
sources:
  - id: default
    name: Default source
    rateLimit: { eventsPerSecond: 1000, burst: 5000 }
    writeKeys:
      # Only hashes are stored. The keys were printed once when this file was made.
      - { id: ${browserId}, type: browser, hash: "${hashWriteKey(browserKey)}" }
      - { id: ${serverId}, type: server, hash: "${hashWriteKey(serverKey)}" }
connections: []
functions: []
`;
  return { yaml, browserKey, serverKey };
}

/** Writes a starter config to `file`; refuses to overwrite one that exists. */
export function writeInitialConfig(file: string): InitialConfig {
  const init = initialConfig();
  writeFileSync(file, init.yaml, { flag: "wx", mode: 0o600 });
  return init;
}
