import type { Logger } from "pino";
import type { FunctionMetrics } from "../metrics/sluice.ts";
import { CpuWatch } from "./cpu-watch.ts";
import { FunctionHostError, FunctionTimeoutError } from "./errors.ts";
import { checkHostMessage } from "./host-messages.ts";
import { type HostProcess, spawnHost } from "./host-process.ts";
import type { HostServices } from "./host-services.ts";
import { hostProblem } from "./host-watchdog.ts";
import { Outbox } from "./outbox.ts";
import { type PendingCall, PendingCalls } from "./pending.ts";
import {
  type ConnectionSpec,
  EXIT_MEMORY,
  type FunctionSpec,
  type HostMessage,
  type LoadReport,
  type ParentMessage,
  type RunRequest,
  type SandboxReport,
} from "./protocol.ts";

/** How one connection's host is run. */
export interface HostClientOptions {
  connection: ConnectionSpec;
  functions: FunctionSpec[];
  workers: number;
  maxMemoryMb: number;
  defaultTimeoutMs: number;
  loadTimeoutMs: number;
  maxEvents: number;
  /** The command line that starts the host (its sandbox's first stage). */
  command: () => string[];
  /** Its working dir: the private copy of its function files. */
  cwd: string;
  services: HostServices;
  logger: Logger;
  metrics?: FunctionMetrics;
  /** Called with each host's account of its sandbox (the first one is warned about). */
  onSandbox(report: SandboxReport): void;
  /** Paths of the private copy said as the user knows them (for error messages). */
  unmap(text: string): string;
}

/** Slack over a chain's limit before the server stops waiting for the host's answer. */
const HOST_GRACE_MS = 2000;
const SWEEP_MS = 250;
const RESTART_BACKOFF_MS = 1000;
/** A sweep this late means the server itself was stalled. */
const STALL_MS = 1000;

type RunMessage = Extract<ParentMessage, { t: "run" }>;

/**
 * The server's side of one connection's function host: starts it (sandboxed, see
 * sandbox/), sends it chain runs over IPC, answers its store and fetch requests, and
 * watches it. When it exits (over its memory limit, crashed, silent) every call it
 * held fails with FunctionHostError and a new host starts; calls that arrive
 * meanwhile wait for it. User code never runs in this process.
 */
export class HostClient {
  private proc: HostProcess | null = null;
  private generation = 0;
  private hostReady = false;
  private closing = false;
  private spawnedAt = 0;
  /** Why the server killed the host, for the log line when it exits. */
  private killReason: string | null = null;
  private lastHeard = 0;
  private lastSweep = Date.now();
  private hello = false;
  private readonly pending = new PendingCalls<RunMessage>();
  private readonly outbox = new Outbox<ParentMessage>(
    (batch) => this.proc?.send(batch),
    // The host is going away: its exit fails what was sent.
    (err) =>
      this.opts.logger.warn({ err, connectionId: this.id }, "could not write to the function host"),
  );
  /** The pipeline's limit: the sum of its functions' timeouts. */
  private limitMs: number;
  private readonly sweeper: ReturnType<typeof setInterval>;
  private firstReady!: (reports: LoadReport[]) => void;
  /** How the function files loaded, once the first host is ready. */
  readonly loaded = new Promise<LoadReport[]>((resolve) => {
    this.firstReady = resolve;
  });
  private reports: LoadReport[] = [];
  private readonly cpu: CpuWatch;
  /** Whether a call was in flight at any time since the last CPU sample. */
  private busySinceSample = false;
  private drained: (() => void) | null = null;

  constructor(private readonly opts: HostClientOptions) {
    this.limitMs = opts.functions.reduce(
      (sum, f) => sum + (f.timeoutMs ?? opts.defaultTimeoutMs),
      0,
    );
    this.cpu = new CpuWatch(opts.workers);
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweeper.unref?.();
    this.spawn();
  }

  get id(): string {
    return this.opts.connection.id;
  }

  /** How each function file loaded (empty until the first host is ready). */
  get loadReports(): LoadReport[] {
    return this.reports;
  }

  /** Runs the chain over one event; resolves with the JSON text of its ChainResult. */
  runJson(request: Omit<RunRequest, "id" | "con">): Promise<string> {
    if (this.closing) return Promise.reject(new FunctionHostError("function host is closed"));
    const limitMs = this.limitMs;
    const { call, answer } = this.pending.add((id) => ({
      message: {
        t: "run",
        id,
        con: this.id,
        limitMs,
        json: JSON.stringify({ id, con: this.id, ...request } satisfies RunRequest),
      },
      limitMs,
      deadline: Date.now() + limitMs + HOST_GRACE_MS,
    }));
    this.busySinceSample = true;
    if (this.hostReady) this.send(call);
    return answer;
  }

  /** Lets the calls it holds finish (or time out), then stops the host (a reload replaced it). */
  async drain(): Promise<void> {
    if (this.pending.size > 0) {
      await new Promise<void>((resolve) => {
        this.drained = resolve;
      });
    }
    await this.close();
  }

  /** Fails what is pending and stops the host. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.sweeper);
    this.pending.fail(
      () => true,
      () => new FunctionHostError("function host is closed"),
    );
    const proc = this.proc?.proc;
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
    this.hello = false;
    this.killReason = null;
    this.spawnedAt = Date.now();
    this.lastHeard = this.spawnedAt;
    const { opts } = this;
    this.outbox.clear();
    this.cpu.reset();
    this.proc = spawnHost(opts.command(), opts.cwd, {
      onBatch: (batch) => {
        if (generation === this.generation) this.onBatch(batch, generation);
      },
      onBroken: (reason) => {
        if (generation === this.generation && this.proc) this.kill(this.proc, `wrote ${reason}`);
      },
      onExit: (code, signal) => {
        if (generation === this.generation) this.onExit(code, signal);
      },
      onOutput: (line) =>
        opts.logger.warn(
          { output: opts.unmap(line), connectionId: this.id },
          "function host output",
        ),
    });
  }

  /** A batch from the host, which runs user code: each message is checked before use. */
  private onBatch(batch: unknown, generation: number): void {
    if (!Array.isArray(batch)) return;
    this.lastHeard = Date.now();
    for (const raw of batch) {
      const m = checkHostMessage(raw);
      if (m) this.onMessage(m, generation);
    }
    this.checkDrained();
  }

  private onMessage(m: HostMessage, generation: number): void {
    const { metrics } = this.opts;
    switch (m.t) {
      case "hello":
        this.onHello(m.sandbox);
        break;
      case "done":
        this.pending.settle(m.id)?.resolve(m.result);
        for (const [fn, ms, failed] of m.runs) metrics?.functionRun(fn, ms, failed === 1);
        break;
      case "timeout":
        this.pending.settle(m.id)?.reject(new FunctionTimeoutError(m.functionId, m.timeoutMs));
        if (m.functionId) metrics?.functionRun(m.functionId, m.timeoutMs, true);
        break;
      case "failed":
        this.pending
          .settle(m.id)
          ?.reject(new FunctionHostError(`${m.error.name}: ${m.error.message}`));
        break;
      case "req":
        void this.opts.services.answer(m.req).then((reply) => {
          if (generation === this.generation && this.proc)
            this.outbox.push({ t: "reply", id: m.id, reply });
        });
        break;
      case "ready":
        this.onReady(m.functions);
        break;
    }
  }

  /** The host is up and sandboxed: it gets its functions and connection now, not before. */
  private onHello(report: SandboxReport): void {
    if (this.hello) return;
    this.hello = true;
    this.opts.onSandbox(report);
    const { opts } = this;
    this.outbox.push({
      t: "init",
      functions: opts.functions,
      connections: [opts.connection],
      workers: opts.workers,
      defaultTimeoutMs: opts.defaultTimeoutMs,
      maxMemoryBytes: opts.maxMemoryMb * 1048576,
      loadTimeoutMs: opts.loadTimeoutMs,
      maxEvents: opts.maxEvents,
    });
  }

  private onReady(loaded: LoadReport[]): void {
    this.hostReady = true;
    const reports = loaded.map((r) =>
      r.error
        ? { ...r, error: { name: r.error.name, message: this.opts.unmap(r.error.message) } }
        : r,
    );
    this.opts.logger.info(
      {
        pid: this.proc?.proc.pid,
        connectionId: this.id,
        workers: this.opts.workers,
        functions: reports.length,
      },
      "function host ready",
    );
    if (this.reports.length === 0) {
      this.reports = reports;
      this.limitMs = reports.reduce((sum, r) => sum + r.timeoutMs, 0);
      this.firstReady(reports);
    }
    for (const c of this.pending.unsent()) this.send(c);
  }

  private onExit(code: number | null, signal: unknown): void {
    this.proc = null;
    this.hostReady = false;
    if (this.closing) return;
    const reason =
      code === EXIT_MEMORY
        ? `went over its memory limit of ${this.opts.maxMemoryMb} MB`
        : (this.killReason ?? `exited (code ${code}, signal ${signal})`);
    const failed = this.pending.fail(
      (c) => c.sent,
      () => new FunctionHostError(`function host ${reason}`),
    );
    this.opts.logger.error(
      { failedCalls: failed, connectionId: this.id },
      `function host of connection ${this.id} ${reason}; restarting it`,
    );
    this.checkDrained();
    const wait = Math.max(0, this.spawnedAt + RESTART_BACKOFF_MS - Date.now());
    setTimeout(() => {
      if (!this.closing) this.spawn();
    }, wait);
  }

  private send(call: PendingCall<RunMessage>): void {
    call.sent = true;
    this.outbox.push(call.message);
  }

  private checkDrained(): void {
    if (this.drained && this.pending.size === 0) {
      this.drained();
      this.drained = null;
    }
  }

  /** Calls past their limit (even waiting for a host to start), and the host's health. */
  private sweep(): void {
    const now = Date.now();
    // The server's own event loop was held up (a huge request, a slow disk): the host's
    // messages wait unread meanwhile, so its silence is ours. It gets a fresh window.
    if (now - this.lastSweep > STALL_MS) this.lastHeard = now;
    this.lastSweep = now;
    this.pending.expire(now);
    this.checkDrained();
    const proc = this.proc;
    if (!proc || this.killReason) return;
    const problem = hostProblem({
      pid: proc.proc.pid,
      spawnedAt: this.spawnedAt,
      hello: this.hello,
      ready: this.hostReady,
      lastHeard: this.lastHeard,
      maxMemoryMb: this.opts.maxMemoryMb,
    });
    if (problem) {
      this.kill(proc, problem);
      return;
    }
    if (!this.hostReady) return;
    const busy = this.busySinceSample || this.pending.size > 0;
    this.busySinceSample = false;
    const cpuProblem = this.cpu.sample(proc.proc.pid, busy);
    if (cpuProblem) this.kill(proc, cpuProblem);
  }

  private kill(proc: HostProcess, reason: string): void {
    this.killReason = reason;
    proc.proc.kill("SIGKILL");
  }
}
