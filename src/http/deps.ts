import type { Logger } from "pino";
import type { KeyRing, ResolvedKey } from "../auth/resolve.ts";
import type { SluiceConfig } from "../config/schema.ts";
import type { IngestService } from "../ingest/service.ts";
import type { EventLog } from "../log/interface.ts";
import type { RateLimiter } from "../ratelimit/interface.ts";

/** What the HTTP routes need; built by the composition root (app.ts). */
export interface HttpDeps {
  config: SluiceConfig;
  keys: KeyRing;
  ingest: IngestService;
  limiter: RateLimiter;
  log: EventLog;
  logger: Logger;
  lifecycle: { shuttingDown: boolean };
  /** A request refused by the rate limiter (for the log and metrics). */
  onRateLimited?: (key: ResolvedKey, cost: number) => void;
}
