import type { Logger } from "pino";
import type { FailedRequest } from "../admin/live/producers.ts";
import type { AdminServices } from "../admin/services.ts";
import type { KeyRing, ResolvedKey } from "../auth/resolve.ts";
import type { SluiceConfig } from "../config/schema.ts";
import type { DedupStore } from "../dedup/interface.ts";
import type { FunctionRunner } from "../functions/pool.ts";
import type { IngestService } from "../ingest/service.ts";
import type { LogAppender } from "../log/stream.ts";
import type { SluiceMetrics } from "../metrics/sluice.ts";
import type { RateLimiter } from "../ratelimit/interface.ts";
import type { RefusalLog } from "../ratelimit/refusals.ts";

/** What the HTTP routes need; built by the composition root (app.ts). */
export interface HttpDeps {
  /**
   * `config` and `keys` are replaced on a config reload (SIGHUP): read them through
   * `deps` on each request, never capture them when the routes are built.
   */
  config: SluiceConfig;
  keys: KeyRing;
  ingest: IngestService;
  limiter: RateLimiter;
  /** Read for `/ready` only: whether appends can succeed now (file log or NATS). */
  log: Pick<LogAppender, "healthy">;
  /** For readiness: whether dedup keys are being written. */
  dedup?: Pick<DedupStore, "healthy">;
  logger: Logger;
  lifecycle: { shuttingDown: boolean };
  /**
   * A request refused by the rate limiter (for metrics and the inspector; every one):
   * `cost` is its events, or 1 for a batch refused unread on an empty bucket (its size
   * is unknown).
   */
  onRateLimited?: (key: ResolvedKey, cost: number, requestId?: string) => void;
  /** Which refusals are logged (one per key and second); without it, every one. */
  refusals?: RefusalLog;
  /** Request, event and log metrics for `/metrics`. */
  metrics?: SluiceMetrics;
  /** The function runtime; absent when no connection has functions. */
  functions?: FunctionRunner;
  /** A request answered with an error (the inspector's live view shows refused ingest). */
  onRequestFailed?: (failure: FailedRequest) => void;
  /** The event inspector's services; absent when the admin API is not served. */
  admin?: AdminServices;
}
