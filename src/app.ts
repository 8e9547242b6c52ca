import { join } from "node:path";
import type { Logger } from "pino";
import { LiveHub } from "./admin/live/hub.ts";
import { LiveAttempts } from "./admin/live/producers.ts";
import { LiveTickets } from "./admin/live/tickets.ts";
import { SourceRates } from "./admin/rates.ts";
import { IndexWriterThread } from "./admin/search/index-thread.ts";
import { eventLogSource } from "./admin/search/log-source.ts";
import { NatsSearchSource } from "./admin/search/nats-source.ts";
import { EventSearch } from "./admin/search/search.ts";
import { IndexShards } from "./admin/search/shards.ts";
import type { AdminServices } from "./admin/services.ts";
import { KeyRing } from "./auth/resolve.ts";
import type { LoadedConfig } from "./config/load.ts";
import { type ReloadOutcome, reloadConfig } from "./config/reload.ts";
import type { SluiceConfig } from "./config/schema.ts";
import { dropLegacyDedupKeys } from "./dedup/legacy.ts";
import type { Clock } from "./delivery/clock.ts";
import { ManagerControl } from "./delivery/control.ts";
import { DeliveryManager } from "./delivery/manager.ts";
import { SqliteOffsetStore } from "./delivery/offsets.ts";
import { SqlitePauseStore } from "./delivery/paused.ts";
import { SqliteDeliveryTrace } from "./delivery/trace/sqlite.ts";
import { deliveryChain } from "./functions/delivery-chain.ts";
import { hideServerFromFunctions } from "./functions/harden.ts";
import type { FunctionPool } from "./functions/pool.ts";
import type { SandboxOptions } from "./functions/sandbox/host-sandbox.ts";
import { functionPoolOptions, hasFunctions, sandboxOptions } from "./functions/setup.ts";
import type { HttpDeps } from "./http/deps.ts";
import { buildHttpApp } from "./http/server.ts";
import { replayDedupKeys } from "./ingest/replay.ts";
import { IngestService } from "./ingest/service.ts";
import { FileEventLog } from "./log/file/file-log.ts";
import { FileLogStream } from "./log/file-stream.ts";
import type { NatsLogStream } from "./log/nats/nats-log.ts";
import { natsLogOptions } from "./log/nats/options.ts";
import type { LogStream } from "./log/stream.ts";
import { createLogger } from "./logger.ts";
import { SluiceMetrics } from "./metrics/sluice.ts";
import { RefusalLog } from "./ratelimit/refusals.ts";
import { openSharedState } from "./state/backend.ts";
import { lockDataDir } from "./state/lock.ts";
import { type DataDirPermissions, makeDataDirPrivate } from "./state/permissions.ts";
import { openStateDb } from "./state/sqlite.ts";
import { VERSION } from "./version.ts";

export { VERSION };

export interface Sluice {
  /** The port actually bound (useful with port 0). */
  port: number;
  url: string;
  logger: Logger;
  metrics: SluiceMetrics;
  /** The routes the HTTP app serves (method and Elysia pattern), as `/openapi.json` must list them. */
  routes: { method: string; path: string }[];
  /** Re-reads the config file (SIGHUP); a bad file is refused and the running config kept. */
  reload(): ReloadOutcome;
  /** Stops accepting, lets in-flight requests finish, flushes, releases the data dir. */
  stop(): Promise<void>;
}

/** How long a graceful stop waits for in-flight requests before closing connections. */
const STOP_GRACE_MS = 5000;

export interface StartOptions {
  logger?: Logger;
  /** Delivery's clock (retry waits and windows); the system clock unless a test compresses time. */
  clock?: Clock;
}

/** The composition root: builds storage, services and the HTTP app from a config, and listens. */
export async function startSluice(loaded: LoadedConfig, opts: StartOptions = {}): Promise<Sluice> {
  const { config } = loaded;
  const logger = opts.logger ?? createLogger(config.logger.level);
  for (const w of loaded.warnings) logger.warn(w);

  const dataDir = config.server.dataDir;
  warnOpenDataDir(makeDataDirPrivate(dataDir), logger);
  const lock = lockDataDir(dataDir);
  const cleanup: (() => Promise<void> | void)[] = [() => lock.release()];
  const closeAll = async () => {
    for (const fn of cleanup.reverse()) {
      try {
        await fn();
      } catch (err) {
        logger.error({ err }, "error while closing");
      }
    }
  };

  try {
    const onNats = config.log.backend === "nats";
    /** The NATS stream's size as the last scrape read it. */
    let streamBytes: number | undefined;
    const metrics = new SluiceMetrics({
      version: VERSION,
      ...(onNats ? { streamBytes: () => streamBytes } : { segments: () => log!.segments() }),
      dedup: () => dedup.stats(),
    });
    metrics.declareSources(config.sources.map((s) => s.id));
    // The file log only with `log.backend: file` (its segments in `<dataDir>/log`).
    const log = onNats
      ? undefined
      : await FileEventLog.open({
          dir: join(dataDir, "log"),
          segmentBytes: config.log.segmentBytes,
          logger,
          onFlush: metrics.logFlushed,
          onCorrupt: metrics.logCorrupt,
          onWriteFailure: metrics.logWriteFailed,
        });
    let closeLog = () => log?.close();
    cleanup.push(() => closeLog());
    const db = openStateDb(dataDir);
    cleanup.push(() => db.close());
    // Callers go through the stream (`log/stream.ts`); closing it closes the file log.
    // `log.backend: nats`: events go to the JetStream stream (SPEC 9); an instance with
    // NATS out of reach starts anyway, not ready, and answers ingest with 503. Its
    // `sluice_log_*` metrics describe the stream (publish-ack time as flush latency).
    const nats = onNats ? await openNatsLog(config, logger, metrics) : undefined;
    const stream: LogStream = nats ?? new FileLogStream(log!, new SqliteOffsetStore(db), logger);
    closeLog = () => stream.close();
    if (nats) {
      metrics.beforeScrape(async () => {
        streamBytes = (await nats.use().jsm.streams.info(nats.settings.stream)).state.bytes;
      });
    }
    const onStateError = (err: Error) => logger.error({ err }, "state persistence failed");
    dropLegacyDedupKeys(db);
    const shared = await openSharedState(config, { dataDir, db, logger, onStateError });
    cleanup.push(...shared.closers);
    const { dedup, limiter, functionStore } = shared;
    // With the log in NATS no key waits in this instance's own log: the stream's
    // duplicate window covers a crash between publish ack and key write.
    if (config.log.backend === "file") await replayDedupKeys(stream, dedup, logger);
    // User code runs in sandboxed child processes (src/functions/host.ts), one per
    // connection with functions, started only if needed.
    let functions: FunctionPool | undefined;
    let sandbox: SandboxOptions | undefined;
    if (hasFunctions(config)) {
      if (!hideServerFromFunctions()) {
        logger.warn("could not mark the server non-dumpable: functions may read its environment");
      }
      sandbox = sandboxOptions(config, loaded.file);
      const { FunctionPool } = await import("./functions/pool.ts");
      const pool = await FunctionPool.start(
        functionPoolOptions(config, config, functionStore, logger, sandbox, metrics),
      );
      cleanup.push(() => pool.close());
      functions = pool;
    }
    const { deadLetters } = shared;
    const trace = new SqliteDeliveryTrace(db, { logger });
    cleanup.push(() => trace.close());
    const delivery = new DeliveryManager({
      connections: config.connections,
      log: stream,
      dataDir,
      retention: config.log.retention,
      retentionIntervalMs: config.log.retention.intervalSeconds * 1000,
      // Read through deps on each event: a reload (SIGHUP) replaces the config.
      chain: deliveryChain(functions, () => deps.config.sources),
      logger,
      deadLetters,
      trace,
      paused: new SqlitePauseStore(db),
      clock: opts.clock,
      // The dedup checkpoint holds the file log's segments it has not passed (start-up
      // replays from it); with NATS nothing is replayed from the stream.
      extraReaders: () => {
        const checkpoint = config.log.backend === "file" ? dedup.checkpoint() : undefined;
        return checkpoint === undefined ? [] : [{ id: "dedup", cursor: checkpoint }];
      },
    });
    const lifecycle = { shuttingDown: false };
    // The inspector (SPEC 11): live attempts, per-minute rates, delivery state.
    const admin: AdminServices = {
      live: new LiveHub(),
      tickets: new LiveTickets(),
      rates: new SourceRates(),
      delivery: new ManagerControl(
        delivery,
        trace,
        deadLetters,
        // Each instance's trace holds what it delivered: the consumer knows what any did.
        // With the file log (one instance) only a connection's start says more.
        nats
          ? (id, ref) => nats.committed(id, ref)
          : async (id, ref) => (stream as FileLogStream).startState(id, ref),
      ),
    };
    cleanup.push(() => admin.live.close());
    if (config.admin.searchIndex) {
      // Written by a thread of its own in the idle scheduling class, never on the ack
      // path (src/admin/search/index-writer.ts); searches read the shards it commits.
      // The file log: the thread reads its segments after appends are durable. NATS: it
      // follows the whole stream (every instance's events) on a connection of its own.
      const indexDir = join(dataDir, "index");
      const writer = await IndexWriterThread.start({
        ...(nats ? { nats: config.log } : { logDir: join(dataDir, "log"), log: log! }),
        indexDir,
        logger,
      });
      cleanup.push(() => writer.stop());
      const shards = new IndexShards(indexDir, { readOnly: true });
      cleanup.push(() => shards.close());
      // Records not indexed yet are read from the log; the writer's ring knows when they
      // became durable (NATS records carry the stream's time).
      admin.search = new EventSearch(
        shards,
        nats
          ? new NatsSearchSource(nats, { follow: false })
          : eventLogSource(log!, writer.storedTimes),
      );
    }
    metrics.liveClients(() => ({
      clients: admin.live.clients,
      dropped: admin.live.droppedClients,
    }));
    const attempts = new LiveAttempts(admin.live, () => deps);
    const deps: HttpDeps = {
      config,
      keys: new KeyRing(config.sources),
      ingest: new IngestService({
        log: stream,
        dedup,
        logger,
        maxEventBytes: config.limits.maxEventBytes,
        onResult: (sourceId, result) => {
          metrics.eventsIngested(sourceId, result);
          admin.rates.ingested(sourceId, result);
        },
        watcher: attempts,
      }),
      limiter,
      log: stream,
      dedup,
      logger,
      lifecycle,
      onRateLimited: (key, cost, requestId) => {
        metrics.rateLimited(key, cost);
        admin.rates.rateLimited(key.source.id, cost);
        attempts.rateLimited(key, cost, requestId);
      },
      refusals: new RefusalLog(),
      onRequestFailed: (failure) => attempts.requestFailed(failure),
      metrics,
      functions,
      admin,
    };
    // Started once deps exist: the chain reads the live config through them.
    await delivery.start();
    cleanup.push(() => delivery.stop());
    metrics.connections(() => delivery.connectionStates());
    metrics.beforeScrape(() => delivery.refreshBacklogs());

    const app = buildHttpApp(deps);
    app.listen({
      port: config.server.port,
      hostname: config.server.host,
      // Elysia sets reusePort; without this a second process on the port binds silently.
      reusePort: false,
    });
    const port = app.server!.port!;
    logger.info(
      {
        version: VERSION,
        port,
        host: config.server.host,
        dataDir,
        sources: config.sources.map((s) => s.id),
      },
      "sluice started",
    );

    /** The connections the function runtime runs (those of the start, then of each reload it took). */
    let functionConnections = config.connections;
    /** SIGHUP for functions: new code and settings; bad ones (allowNetworks) keep the running ones. */
    const reloadFunctions = (pool: FunctionPool, next: SluiceConfig, box: SandboxOptions) => {
      try {
        const changes = pool.reload(
          functionPoolOptions(next, next, functionStore, logger, box, metrics),
        );
        functionConnections = next.connections;
        return changes;
      } catch (err) {
        logger.error({ err }, `functions not reloaded: ${(err as Error).message}`);
        return undefined;
      }
    };

    let stopping: Promise<void> | null = null;
    return {
      port,
      url: `http://127.0.0.1:${port}`,
      logger,
      metrics,
      routes: app.routes.map((r) => ({ method: r.method, path: r.path })),
      reload() {
        const outcome = reloadConfig({
          file: loaded.file,
          logger,
          current: () => deps.config,
          functionConnections: () => functionConnections,
          apply: (next) => {
            deps.config = next;
            deps.keys = new KeyRing(next.sources);
            metrics.declareSources(next.sources.map((s) => s.id));
            void delivery.applyConnections(next.connections);
          },
          reloadFunctions:
            functions && sandbox
              ? (next) => reloadFunctions(functions!, next, sandbox!)
              : undefined,
        });
        metrics.configReloaded(outcome.applied);
        return outcome;
      },
      stop() {
        stopping ??= (async () => {
          lifecycle.shuttingDown = true;
          // Live streams never end by themselves: a graceful stop would wait for them. One
          // whose client stopped reading still holds unsent bytes until the idle timeout,
          // so after a grace period the listener is closed hard.
          admin.live.close();
          const graceful = app.stop(false);
          const grace = Bun.sleep(STOP_GRACE_MS).then(() => "late" as const);
          if ((await Promise.race([graceful, grace])) === "late") await app.stop(true);
          await closeAll();
          logger.info("sluice stopped");
        })();
        return stopping;
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/**
 * The JetStream log, its client loaded only then: the NATS client's modules held ~2 MB
 * of a server that logs to files (bench/RESULTS.md, "Fourth session: idle RSS").
 */
async function openNatsLog(
  config: SluiceConfig,
  logger: Logger,
  metrics: SluiceMetrics,
): Promise<NatsLogStream> {
  const { NatsLogStream } = await import("./log/nats/nats-log.ts");
  return NatsLogStream.open({
    ...natsLogOptions(config.log, logger),
    onFlush: metrics.logFlushed,
    onWriteFailure: metrics.logWriteFailed,
  });
}

/** The data dir check's findings as warnings: what was open to other users, what still is. */
function warnOpenDataDir(found: DataDirPermissions, logger: Logger): void {
  if (found.fixed.length > 0) {
    logger.warn(
      { count: found.fixed.length, entries: found.fixed.slice(0, 20) },
      `data dir: ${found.fixed.length} entries were open to other users; made private (dirs 0700, files 0600)`,
    );
  }
  if (found.unfixable.length > 0) {
    logger.warn(
      { count: found.unfixable.length, entries: found.unfixable.slice(0, 20) },
      `data dir: ${found.unfixable.length} entries are open to other users and not sluice's to change; ` +
        "chmod them (dirs 0700, files 0600)",
    );
  }
}
