import type { Logger } from "pino";
import type { LogPosition } from "../../log/interface.ts";
import { StoredTimes, type StoredTimesUpdate } from "./stored-times.ts";

export type ToIndexWriter =
  | {
      t: "init";
      logDir: string;
      indexDir: string;
      end: LogPosition;
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
  | { t: "log"; level: "info" | "error"; msg: string; fields: Record<string, unknown> }
  | { t: "stopped" };

export interface IndexThreadOptions {
  /** The file log's directory, read by the writer thread itself. */
  logDir: string;
  indexDir: string;
  /** The log: its durable end, and a signal after each durable append. */
  log: { end(): LogPosition; onAppend(listener: () => void): () => void };
  logger: Logger;
  /** Appends within this long are told to the writer in one message. */
  delayMs?: number;
  /** Events per shard, records per transaction (tests). */
  shardEvents?: number;
  batch?: number;
}

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

  private constructor(
    private readonly worker: Worker,
    private readonly opts: IndexThreadOptions,
    /** The scheduling the writer thread got (tests, startup log). */
    readonly priority: "idle" | "nice" | "none",
    /**
     * When each append since the start became durable, while the ring keeps it: also
     * read by searches, for the records the thread has not indexed yet.
     */
    readonly storedTimes: StoredTimes,
  ) {}

  static async start(opts: IndexThreadOptions): Promise<IndexWriterThread> {
    const worker = new Worker(new URL("./index-writer.ts", import.meta.url).href);
    const priority = await new Promise<"idle" | "nice" | "none">((resolve, reject) => {
      worker.onmessage = (e: MessageEvent<FromIndexWriter>) => {
        if (e.data.t === "ready") resolve(e.data.priority);
        else if (e.data.t === "failed") reject(new Error(e.data.message));
      };
      worker.addEventListener("error", (e) => reject(new Error((e as ErrorEvent).message)));
      worker.postMessage({
        t: "init",
        logDir: opts.logDir,
        indexDir: opts.indexDir,
        end: opts.log.end(),
        shardEvents: opts.shardEvents,
        batch: opts.batch,
      } satisfies ToIndexWriter);
    }).catch((err) => {
      worker.terminate();
      throw err;
    });
    // From here on every durable append is timed (the thread takes appends made while
    // it started as a gap: their records have no known time).
    const thread = new IndexWriterThread(worker, opts, priority, new StoredTimes(opts.log.end()));
    worker.onmessage = (e: MessageEvent<FromIndexWriter>) => thread.onMessage(e.data);
    // Search goes on without it (reading the part not indexed from the log), but say so.
    worker.addEventListener("error", (e) =>
      opts.logger.error(
        { err: { message: (e as ErrorEvent).message } },
        "search index writer thread failed; the index no longer follows the log until a restart",
      ),
    );
    worker.unref();
    thread.unsubscribe = opts.log.onAppend(() => thread.appended());
    return thread;
  }

  /** Stops following the log and closes the index; resolves once the thread is gone. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.unsubscribe?.();
      if (this.timer !== undefined) clearTimeout(this.timer);
      // The last appends too, with their times: the thread indexes them before it stops
      // (a time the index does not keep is not known after a restart).
      this.worker.postMessage({
        t: "end",
        end: this.opts.log.end(),
        stored: this.storedTimes.drain(),
      } satisfies ToIndexWriter);
      // Held until the thread answers: with nothing else left to run (a failed start),
      // an unreferenced wait would let the process exit, with code 0, right here.
      this.worker.ref();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stopped = new Promise<void>((resolve) => {
        this.onStopped = resolve;
        timer = setTimeout(resolve, STOP_WAIT_MS);
      });
      this.worker.postMessage({ t: "stop" } satisfies ToIndexWriter);
      await stopped;
      clearTimeout(timer);
      this.worker.terminate();
    })();
    return this.stopping;
  }

  private onStopped: (() => void) | undefined;

  /** Runs right after each durable append (group commit), before its appends are answered. */
  private appended(): void {
    this.storedTimes.add(this.opts.log.end(), Date.now());
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.worker.postMessage({
        t: "end",
        end: this.opts.log.end(),
        stored: this.storedTimes.drain(),
      } satisfies ToIndexWriter);
    }, this.opts.delayMs ?? 100);
  }

  private onMessage(m: FromIndexWriter): void {
    if (m.t === "log") this.opts.logger[m.level](m.fields, m.msg);
    else if (m.t === "stopped") this.onStopped?.();
  }
}
