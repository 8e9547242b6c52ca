import type { Subprocess } from "bun";
import type { Logger } from "pino";
import type { FunctionMetrics } from "../metrics/sluice.ts";
import { FunctionHostError, FunctionTimeoutError } from "./errors.ts";
import { type HostIdentity, residentBytes, spawnHost } from "./host-process.ts";
import {
  type ChainResult,
  type ConnectionSpec,
  EXIT_MEMORY,
  type FunctionSpec,
  type HostMessage,
  type LoadReport,
  type ParentMessage,
  type RunRequest,
  type StoreRequest,
} from "./protocol.ts";
import { type FunctionStore, runStoreRequest, storeOwner } from "./store.ts";

export interface FunctionPoolOptions {
  functions: FunctionSpec[];
  /** Connections with functions (only their options and env reach the host). */
  connections: ConnectionSpec[];
  workers: number;
  maxMemoryMb: number;
  defaultTimeoutMs: number;
  loadTimeoutMs: number;
  /** The most events one function may return (limits.maxBatchEvents). */
  maxEvents: number;
  store: FunctionStore;
  logger: Logger;
  /** Per-function run counts, errors and time for /metrics. */
  metrics?: FunctionMetrics;
  /** The user the host process runs as (default: the server's). */
  identity?: HostIdentity;
}

/** One chain run as the server asks for it. */
export interface ChainCall {
  connectionId: string;
  event: Record<string, unknown>;
  /** Request headers, credentials already removed. */
  headers: Record<string, string>;
  sourceType: "browser" | "s2s";
  receivedAt: number;
  retries: number;
}

/** What the server's routes and delivery need of the function runtime. */
export interface FunctionRunner {
  /** Runs a connection's chain; resolves with the JSON text of its ChainResult. */
  runJson(call: ChainCall): Promise<string>;
  run(call: ChainCall): Promise<ChainResult>;
}

interface Pending {
  resolve: (json: string) => void;
  reject: (err: Error) => void;
  message: ParentMessage;
  limitMs: number;
  /** A backstop (epoch ms): the host's own watchdog answers sooner. */
  deadline: number;
  sent: boolean;
}

/** Slack over a chain's limit before the server stops waiting for the host's answer. */
const HOST_GRACE_MS = 2000;
/** A host silent this long (it sends a heartbeat every second) is killed and restarted. */
const HOST_SILENCE_MS = 5000;
const SWEEP_MS = 250;
/** The server's own check of the host's memory, a backstop to the host's self-check. */
const PARENT_MEMORY_FACTOR = 1.25;
const RESTART_BACKOFF_MS = 1000;

/**
 * The server's side of the function runtime: starts the function host process
 * (host.ts), sends it chain runs over IPC and answers its store requests from the
 * server's FunctionStore. The host is watched: when it exits (over its memory limit,
 * or crashed) every call it held fails with FunctionHostError and a new host starts;
 * calls that arrive meanwhile wait for it. User code never runs in this process.
 */
export class FunctionPool implements FunctionRunner {
  private proc: Subprocess | null = null;
  private generation = 0;
  private hostReady = false;
  private closing = false;
  private spawnedAt = 0;
  /** Why the server killed the host, for the log line when it exits. */
  private killReason: string | null = null;
  private lastHeard = 0;
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private outbox: ParentMessage[] = [];
  private reports: LoadReport[] = [];
  /** Each connection's pipeline limit: the sum of its functions' timeouts. */
  private limits = new Map<string, number>();
  private readonly sweeper: ReturnType<typeof setInterval>;
  private firstReady!: () => void;
  private readonly loaded = new Promise<void>((resolve) => {
    this.firstReady = resolve;
  });

  private constructor(private readonly opts: FunctionPoolOptions) {
    this.setLimits(
      opts.functions.map((f) => ({
        id: f.id,
        file: f.file,
        timeoutMs: f.timeoutMs ?? opts.defaultTimeoutMs,
      })),
    );
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweeper.unref?.();
    this.spawn();
  }

  /**
   * Starts the host and waits until its workers have loaded every function file (load
   * failures are logged with the file and the error). A host that does not come up in
   * time is logged too; calls then wait for it.
   */
  static async start(opts: FunctionPoolOptions): Promise<FunctionPool> {
    const pool = new FunctionPool(opts);
    const waitMs = opts.loadTimeoutMs * 2 + 5000;
    const ready = await Promise.race([
      pool.loaded.then(() => true),
      Bun.sleep(waitMs).then(() => false),
    ]);
    if (!ready) opts.logger.error({ waitMs }, "function host did not become ready in time");
    return pool;
  }

  /** How each function file loaded (an `error` for those that did not). */
  get loadReports(): LoadReport[] {
    return this.reports;
  }

  /** Runs a connection's chain; resolves with the JSON text of its ChainResult. */
  runJson(call: ChainCall): Promise<string> {
    if (this.closing) return Promise.reject(new FunctionHostError("function pool is closed"));
    this.seq = this.seq >= 0x7ffffff0 ? 1 : this.seq + 1;
    const id = this.seq;
    const con = call.connectionId;
    const request: RunRequest = {
      id,
      con,
      event: call.event,
      meta: {
        headers: call.headers,
        sourceType: call.sourceType,
        receivedAt: call.receivedAt,
        retries: call.retries,
      },
    };
    const limitMs = this.limits.get(con) ?? this.opts.defaultTimeoutMs;
    const message: ParentMessage = { t: "run", id, con, limitMs, json: JSON.stringify(request) };
    return new Promise((resolve, reject) => {
      const p = {
        resolve,
        reject,
        message,
        limitMs,
        deadline: Date.now() + limitMs + HOST_GRACE_MS,
        sent: false,
      };
      this.pending.set(id, p);
      if (this.hostReady) this.send(p);
    });
  }

  /** Runs a connection's chain (for delivery, which needs the events as values). */
  async run(call: ChainCall): Promise<ChainResult> {
    return JSON.parse(await this.runJson(call)) as ChainResult;
  }

  /** Fails what is pending and stops the host. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.sweeper);
    this.failPending(
      () => true,
      () => new FunctionHostError("function pool is closed"),
    );
    const proc = this.proc;
    if (!proc) return;
    proc.kill("SIGTERM");
    const exited = await Promise.race([
      proc.exited.then(() => true),
      Bun.sleep(2000).then(() => false),
    ]);
    if (!exited) proc.kill("SIGKILL");
  }

  private spawn(): void {
    const generation = ++this.generation;
    this.hostReady = false;
    this.killReason = null;
    this.spawnedAt = Date.now();
    this.lastHeard = this.spawnedAt;
    const { opts } = this;
    const proc = spawnHost({
      onMessages: (batch) => {
        if (generation === this.generation) this.onMessages(batch);
      },
      onExit: (code, signal) => {
        if (generation === this.generation) this.onExit(code, signal);
      },
      onOutput: (line) => opts.logger.warn({ output: line }, "function host output"),
      identity: opts.identity,
    });
    this.proc = proc;
    proc.send([
      {
        t: "init",
        functions: opts.functions,
        connections: opts.connections,
        workers: opts.workers,
        defaultTimeoutMs: opts.defaultTimeoutMs,
        maxMemoryBytes: opts.maxMemoryMb * 1048576,
        loadTimeoutMs: opts.loadTimeoutMs,
        maxEvents: opts.maxEvents,
      } satisfies ParentMessage,
    ]);
  }

  private onMessages(batch: HostMessage[]): void {
    this.lastHeard = Date.now();
    const { metrics } = this.opts;
    for (const m of batch) {
      switch (m.t) {
        case "done":
          this.settle(m.id)?.resolve(m.result);
          for (const [fn, ms, failed] of m.runs) metrics?.functionRun(fn, ms, failed === 1);
          break;
        case "timeout":
          this.settle(m.id)?.reject(new FunctionTimeoutError(m.functionId, m.timeoutMs));
          if (m.functionId) metrics?.functionRun(m.functionId, m.timeoutMs, true);
          break;
        case "failed":
          this.settle(m.id)?.reject(new FunctionHostError(`${m.error.name}: ${m.error.message}`));
          break;
        case "store":
          void this.storeOp(m, this.generation);
          break;
        case "ready":
          this.onReady(m.functions);
          break;
      }
    }
  }

  private onReady(reports: LoadReport[]): void {
    this.hostReady = true;
    this.opts.logger.info(
      { pid: this.proc?.pid, workers: this.opts.workers, functions: reports.length },
      "function host ready",
    );
    if (this.reports.length === 0) {
      this.reports = reports;
      this.setLimits(reports);
      for (const r of reports) {
        if (!r.error) continue;
        this.opts.logger.error(
          { functionId: r.id, file: r.file, error: r.error },
          `function ${r.id} failed to load from ${r.file}: ${r.error.name}: ${r.error.message}`,
        );
      }
      this.firstReady();
    }
    for (const p of this.pending.values()) if (!p.sent) this.send(p);
  }

  private onExit(code: number | null, signal: unknown): void {
    this.proc = null;
    this.hostReady = false;
    if (this.closing) return;
    const reason =
      code === EXIT_MEMORY
        ? `went over its memory limit of ${this.opts.maxMemoryMb} MB`
        : (this.killReason ?? `exited (code ${code}, signal ${signal})`);
    const failed = this.failPending(
      (p) => p.sent,
      () => new FunctionHostError(`function host ${reason}`),
    );
    this.opts.logger.error({ failedCalls: failed }, `function host ${reason}; restarting it`);
    const wait = Math.max(0, this.spawnedAt + RESTART_BACKOFF_MS - Date.now());
    setTimeout(() => {
      if (!this.closing) this.spawn();
    }, wait);
  }

  private send(p: Pending): void {
    p.sent = true;
    this.outbox.push(p.message);
    if (this.outbox.length === 1) queueMicrotask(this.flush);
  }

  /** One IPC write per turn of the event loop, however many calls it carries. */
  private readonly flush = (): void => {
    const batch = this.outbox;
    this.outbox = [];
    try {
      this.proc?.send(batch);
    } catch (err) {
      // The host is going away: onExit fails what was sent.
      this.opts.logger.warn({ err }, "could not write to the function host");
    }
  };

  private settle(id: number): Pending | undefined {
    const p = this.pending.get(id);
    this.pending.delete(id);
    return p;
  }

  private failPending(which: (p: Pending) => boolean, error: () => Error): number {
    let n = 0;
    for (const [id, p] of this.pending) {
      if (!which(p)) continue;
      this.pending.delete(id);
      p.reject(error());
      n++;
    }
    return n;
  }

  private async storeOp(m: StoreRequest, generation: number): Promise<void> {
    const chain = this.opts.connections.find((c) => c.id === m.con)?.functions;
    const reply = chain?.includes(m.fn)
      ? await runStoreRequest(this.opts.store, storeOwner(m.con, m.fn), m, (err) =>
          this.opts.logger.error({ err, op: m.op }, "function store failed"),
        )
      : { id: m.id, error: { name: "Error", message: "store request for an unknown function" } };
    if (generation !== this.generation || !this.proc) return;
    this.outbox.push({ t: "store", ...reply });
    if (this.outbox.length === 1) queueMicrotask(this.flush);
  }

  /** Calls past their limit (even waiting for a host to start), a silent host, its memory. */
  private sweep(): void {
    const now = Date.now();
    for (const [id, p] of this.pending) {
      if (p.deadline > now) continue;
      this.pending.delete(id);
      p.reject(new FunctionTimeoutError(undefined, p.limitMs));
    }
    const proc = this.proc;
    if (!proc || this.killReason) return;
    if (this.hostReady && now - this.lastHeard > HOST_SILENCE_MS) {
      this.kill(proc, `stopped answering for ${now - this.lastHeard} ms`);
      return;
    }
    const rss = residentBytes(proc.pid);
    if (rss !== undefined && rss > this.opts.maxMemoryMb * 1048576 * PARENT_MEMORY_FACTOR) {
      this.kill(proc, `went over its memory limit of ${this.opts.maxMemoryMb} MB`);
    }
  }

  private kill(proc: Subprocess, reason: string): void {
    this.killReason = reason;
    proc.kill("SIGKILL");
  }

  private setLimits(reports: LoadReport[]): void {
    const timeouts = new Map(reports.map((r) => [r.id, r.timeoutMs]));
    this.limits = new Map(
      this.opts.connections.map((c) => [
        c.id,
        c.functions.reduce((sum, id) => sum + (timeouts.get(id) ?? this.opts.defaultTimeoutMs), 0),
      ]),
    );
  }
}
