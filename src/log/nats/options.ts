import type { Logger } from "pino";
import type { SluiceConfig } from "../../config/schema.ts";
import type { NatsLogOptions } from "./nats-log.ts";

/**
 * The NATS log's settings from the config's `log` (SPEC 9), for whatever opens the
 * stream: the server (`app.ts`) and the CLI (`sluice log tail`).
 */
export function natsLogOptions(log: SluiceConfig["log"], logger?: Logger): NatsLogOptions {
  return {
    servers: log.servers,
    stream: log.stream,
    subjectPrefix: log.subjectPrefix,
    replicas: log.replicas,
    duplicateWindowMs: log.duplicateWindowSeconds * 1000,
    ackWaitMs: log.ackWaitSeconds * 1000,
    // `auto`: by the version of the server this instance is connected to.
    ...(log.retentionPurge === "never" ? { purgeKeepsPending: false } : {}),
    logger,
  };
}
