import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import type { Subprocess } from "bun";
import type { Logger } from "pino";
import { FunctionHostError, FunctionTimeoutError } from "./errors.ts";
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
import type { FunctionStore } from "./store.ts";

/** The hidden CLI command that runs the function host (see main.ts). */
export const HOST_COMMAND = "__function-host";

export interface FunctionPoolOptions {
  functions: FunctionSpec[];
  /** Connections with functions (only their options and env reach the host). */
  connections: ConnectionSpec[];
  workers: number;
  maxMemoryMb: number;
  defaultTimeoutMs: number;
  loadTimeoutMs: number;
  store: FunctionStore;
  logger: Logger;
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
  /** Past this (epoch ms) the host is considered stuck: its own watchdog answers sooner. */
  deadline: number;
  sent: boolean;
}

/** Slack over a chain's summed timeouts before the server gives up on the host itself. */
const HOST_GRACE_MS = 2000;
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
  private killedForMemory = false;
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
    const message: ParentMessage = { t: "run", id, con, json: JSON.stringify(request) };
    const limit = this.limits.get(call.connectionId) ?? this.opts.defaultTimeoutMs;
    return new Promise((resolve, reject) => {
      const p = {
        resolve,
        reject,
        message,
        deadline: Date.now() + limit + HOST_GRACE_MS,
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
    this.killedForMemory = false;
    this.spawnedAt = Date.now();
    const { opts } = this;
    const proc = Bun.spawn(hostCommand(), {
      // Only PATH: user code must not see the server's environment (SPEC 7).
      env: { PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin" },
      cwd: tmpdir(),
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
      serialization: "json",
      ipc: (batch) => {
        if (generation === this.generation) this.onMessages(batch as HostMessage[]);
      },
      onExit: (_p, code, signal) => {
        if (generation === this.generation) this.onExit(code, signal);
      },
    });
    this.proc = proc;
    void this.forwardStderr(proc.stderr as ReadableStream<Uint8Array>);
    proc.send([
      {
        t: "init",
        functions: opts.functions,
        connections: opts.connections,
        workers: opts.workers,
        defaultTimeoutMs: opts.defaultTimeoutMs,
        maxMemoryBytes: opts.maxMemoryMb * 1048576,
        loadTimeoutMs: opts.loadTimeoutMs,
      } satisfies ParentMessage,
    ]);
  }

  private onMessages(batch: HostMessage[]): void {
    for (const m of batch) {
      switch (m.t) {
        case "done":
          this.settle(m.id)?.resolve(m.result);
          break;
        case "timeout":
          this.settle(m.id)?.reject(new FunctionTimeoutError(m.functionId, m.timeoutMs));
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
      code === EXIT_MEMORY || this.killedForMemory
        ? `went over its memory limit of ${this.opts.maxMemoryMb} MB`
        : `exited (code ${code}, signal ${signal})`;
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
    const { store } = this.opts;
    let reply: ParentMessage;
    try {
      let value: string | number | undefined;
      if (m.op === "get") value = await store.get(m.key);
      else if (m.op === "ttl") value = await store.ttl(m.key);
      else if (m.op === "del") await store.del(m.key);
      else await store.set(m.key, m.value ?? "null", m.ttl ?? null);
      reply = { t: "store", id: m.id, value };
    } catch (err) {
      this.opts.logger.error({ err, op: m.op }, "function store failed");
      reply = { t: "store", id: m.id, error: { name: "Error", message: "store unavailable" } };
    }
    if (generation !== this.generation || !this.proc) return;
    this.outbox.push(reply);
    if (this.outbox.length === 1) queueMicrotask(this.flush);
  }

  /** Calls the host should long have answered, and the host's memory. */
  private sweep(): void {
    const now = Date.now();
    const stuck = this.failPending(
      (p) => p.deadline <= now,
      () => new FunctionHostError("function host did not answer in time"),
    );
    const proc = this.proc;
    if (!proc) return;
    if (stuck > 0 && this.hostReady) {
      this.opts.logger.error(
        { failedCalls: stuck },
        "function host stopped answering; restarting it",
      );
      proc.kill("SIGKILL");
      return;
    }
    const rss = residentBytes(proc.pid);
    if (rss !== undefined && rss > this.opts.maxMemoryMb * 1048576 * PARENT_MEMORY_FACTOR) {
      this.killedForMemory = true;
      proc.kill("SIGKILL");
    }
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

  private async forwardStderr(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffered = "";
    for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(chunk, { stream: true });
      let nl = buffered.indexOf("\n");
      while (nl >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line) this.opts.logger.warn({ output: line.slice(0, 2000) }, "function host output");
        nl = buffered.indexOf("\n");
      }
    }
  }
}

/** `sluice __function-host`: through main.ts in development, the binary itself when compiled. */
function hostCommand(): string[] {
  const compiled =
    import.meta.path.startsWith("/$bunfs/") || /^[A-Za-z]:[\\/]~BUN[\\/]/.test(import.meta.path);
  if (compiled) return [process.execPath, HOST_COMMAND];
  return [process.execPath, fileURLToPath(new URL("../main.ts", import.meta.url)), HOST_COMMAND];
}

/** Resident memory of a process from /proc (Linux); undefined where there is none. */
function residentBytes(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
