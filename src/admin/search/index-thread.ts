import { readdirSync } from "node:fs";
import type { Logger } from "pino";
import type { SluiceConfig } from "../../config/schema.ts";
import type { LogPosition } from "../../log/interface.ts";
import { StoredTimes, type StoredTimesUpdate } from "./stored-times.ts";

export type ToIndexWriter =
  | {
      t: "init";
      /**
       * The file log: its directory and durable end (the thread reads the segments
       * itself). NATS: the config's `log` (the thread connects to the stream itself).
       */
      log: { kind: "file"; logDir: string; end: LogPosition } | { kind: "nats"; config: NatsLog };
      indexDir: string;
      shardEvents?: number;
      batch?: number;
    }
  /**
   * The log's durable end moved (sent after appends, gathered), with when each append
   * since the last message became durable.
   */
  | { t: "end"; end: LogPosition; stored?: StoredTimesUpdate }
  | { t: "stop" };

export type FromIndexWriter =
  | { t: "ready"; priority: "idle" | "nice" | "none" }
  | { t: "failed"; message: string }
  | { t: "log"; level: "info" | "warn" | "error"; msg: string; fields: Record<string, unknown> }
  | { t: "stopped" };

/** The config's `log` with the NATS log: what the writer thread opens the stream with. */
export type NatsLog = SluiceConfig["log"];

/** The file log: the thread reads its segments, after appends are durable. */
interface FileLogOptions {
  /** The file log's directory, read by the writer thread itself. */
  logDir: string;
  /**
   * The log: its durable end, where it starts (without it the thread starts at once)
   * and a signal after each durable append.
   */
  log: {
    end(): LogPosition;
    start?(): LogPosition;
    onAppend(listener: () => void): () => void;
  };
  nats?: undefined;
}

/**
 * The NATS log (the config's `log`): the thread opens the stream with a connection of
 * its own and follows all of it (every instance's events). It starts at once: other
 * instances' appends are not signalled here.
 */
interface NatsLogOptions {
  nats: NatsLog;
}

export type IndexThreadOptions = (FileLogOptions | NatsLogOptions) & {
  indexDir: string;
  logger: Logger;
  /** Appends within this long are told to the writer in one message. */
  delayMs?: number;
  /** Events per shard, records per transaction (tests). */
  shardEvents?: number;
  batch?: number;
};

/** How long a stop waits for the writer to index the last appends and close its shards. */
const STOP_WAIT_MS = 2000;

/**
 * The server's side of the search index writer (index-writer.ts): starts the thread,
 * tells it where the log ends after appends and when each append became durable (at
 * most one message per `delayMs`; per append, one entry in a ring: the only work
 * ingest does for the index) and relays what it logs.
 */
export class IndexWriterThread {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private unsubscribe: (() => void) | undefined;
  private stopping: Promise<void> | undefined;
  private worker: Worker | undefined;
  /** Settles once the thread has ended (after `terminate`, its shards' files are closed). */
  private exited: Promise<void> = Promise.resolve();
  private started: "idle" | "nice" | "none" | undefined;
  /** The thread could not start: not tried again before a restart. */
  private failed = false;
  /**
   * When each append since the start became durable, while the ring keeps it: also
   * read by searches, for the records the thread has not indexed yet. The file log
   * only (NATS records carry the stream's own time).
   */
  readonly storedTimes: StoredTimes | undefined;
  /** Where the log ended when the ring started: the thread's first `init` (file log). */
  private readonly from: LogPosition;

  private constructor(private readonly opts: IndexThreadOptions) {
    this.from = opts.nats ? { segment: 0, offset: 0 } : opts.log.end();
    this.storedTimes = opts.nats ? undefined : new StoredTimes(this.from);
  }

  /** The scheduling the writer thread got (tests, startup log); undefined until it runs. */
  get priority(): "idle" | "nice" | "none" | undefined {
    return this.started;
  }

  /**
   * Follows the log from now on. The thread (a JS runtime of its own: 3–6 MB) starts
   * here when the log or the index holds anything, and answers only once it is ready
   * (a failure fails the start); with both empty (a new install) it starts at the
   * first durable append, as nothing before it has anything to index, and a failure
   * then is logged.
   */
  static async start(opts: IndexThreadOptions): Promise<IndexWriterThread> {
    const thread = new IndexWriterThread(opts);
    if (opts.nats) {
      await thread.launch(thread.from);
      return thread;
    }
    // From here on every durable append is timed, those made while the thread starts too
    // (it gets them with the first `end` after its `init`).
    const { log } = opts;
    thread.unsubscribe = log.onAppend(() => thread.appended(log.end()));
    if (log.start === undefined || !isEmpty(log.start(), thread.from, opts.indexDir)) {
      await thread.launch(thread.from).catch((err) => {
        thread.unsubscribe?.();
        if (thread.timer !== undefined) clearTimeout(thread.timer);
        throw err;
      });
    }
    return thread;
  }

  /** Starts the thread; resolves once it is ready (rejects if it could not start). */
  private launch(end: LogPosition): Promise<void> {
    const worker = new Worker(new URL("./index-writer.ts", import.meta.url).href);
    this.worker = worker;
    this.exited = new Promise((resolve) => worker.addEventListener("close", () => resolve()));
    const ready = new Promise<void>((resolve, reject) => {
      worker.onmessage = (e: MessageEvent<FromIndexWriter>) => {
        if (e.data.t === "ready") {
          this.started = e.data.priority;
          worker.onmessage = (next: MessageEvent<FromIndexWriter>) => this.onMessage(next.data);
          // Search goes on without it (reading the part not indexed from the log), but say so.
          worker.addEventListener("error", (err) =>
            this.opts.logger.error(
              { err: { message: (err as ErrorEvent).message } },
              "search index writer thread failed; the index no longer follows the log until a restart",
            ),
          );
          // A stop asked for while it started holds it until it answers.
          if (this.stopping === undefined) worker.unref();
          resolve();
        } else if (e.data.t === "failed") reject(new Error(e.data.message));
      };
      worker.addEventListener("error", (e) => reject(new Error((e as ErrorEvent).message)));
    }).catch((err) => {
      worker.terminate();
      this.worker = undefined;
      this.failed = true;
      this.onStopped?.(); // a stop waiting for it: nothing left to wait for
      throw err;
    });
    const { opts } = this;
    worker.postMessage({
      t: "init",
      log: opts.nats
        ? { kind: "nats", config: opts.nats }
        : { kind: "file", logDir: opts.logDir, end },
      indexDir: opts.indexDir,
      shardEvents: opts.shardEvents,
      batch: opts.batch,
    } satisfies ToIndexWriter);
    return ready;
  }

  /** Stops following the log and closes the index; resolves once the thread has ended. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.unsubscribe?.();
      if (this.timer !== undefined) clearTimeout(this.timer);
      const worker = this.worker;
      if (worker === undefined) return; // never started: nothing was appended
      // The last appends too, with their times: the thread indexes them before it stops
      // (a time the index does not keep is not known after a restart).
      if (!this.opts.nats) {
        worker.postMessage({
          t: "end",
          end: this.opts.log.end(),
          stored: this.storedTimes?.drain(),
        } satisfies ToIndexWriter);
      }
      // Held until the thread answers: with nothing else left to run (a failed start),
      // an unreferenced wait would let the process exit, with code 0, right here.
      worker.ref();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stopped = new Promise<void>((resolve) => {
        this.onStopped = resolve;
        timer = setTimeout(resolve, STOP_WAIT_MS);
      });
      worker.postMessage({ t: "stop" } satisfies ToIndexWriter);
      await stopped;
      clearTimeout(timer);
      worker.terminate();
      // Ended, not only asked to: a caller may remove the index's directory next. A
      // thread inside a long native call ends when it returns; a stop waits that long
      // once more at most.
      const ended = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, STOP_WAIT_MS);
      });
      await Promise.race([this.exited, ended]);
      clearTimeout(timer);
    })();
    return this.stopping;
  }

  private onStopped: (() => void) | undefined;

  /** Runs right after each durable append (group commit), before its appends are answered. */
  private appended(end: LogPosition): void {
    this.storedTimes?.add(end, Date.now());
    if (this.worker === undefined && !this.failed) {
      // The first append to an empty log: the thread starts from where the ring does
      // (messages sent before it is ready wait for it, in order).
      this.launch(this.from).catch((err) =>
        this.opts.logger.error({ err }, "search index writer thread did not start"),
      );
    }
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.opts.nats) return;
      this.worker?.postMessage({
        t: "end",
        end: this.opts.log.end(),
        stored: this.storedTimes?.drain(),
      } satisfies ToIndexWriter);
    }, this.opts.delayMs ?? 100);
  }

  private onMessage(m: FromIndexWriter): void {
    if (m.t === "log") this.opts.logger[m.level](m.fields, m.msg);
    else if (m.t === "stopped") this.onStopped?.();
  }
}

/** Whether the log holds no records and the index no shards: nothing to index yet. */
function isEmpty(start: LogPosition, end: LogPosition, indexDir: string): boolean {
  if (start.segment !== end.segment || end.offset !== 0) return false;
  try {
    return !readdirSync(indexDir).some((f) => f.endsWith(".db"));
  } catch {
    return true; // no index dir yet
  }
}
