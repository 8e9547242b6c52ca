import type { Logger } from "pino";
import type { FunctionMetrics } from "../metrics/sluice.ts";
import { FunctionHostError } from "./errors.ts";
import { FetchPolicy } from "./fetch-policy.ts";
import { HostClient } from "./host-client.ts";
import { HostServices } from "./host-services.ts";
import type { ChainResult, ConnectionSpec, FunctionSpec, LoadReport } from "./protocol.ts";
import { describeReload } from "./reload-changes.ts";
import type { ChainCall, FunctionRunner } from "./runner.ts";
import { type SandboxOptions, SandboxWarnings, stageHost } from "./sandbox/host-sandbox.ts";
import type { FunctionStore } from "./store.ts";

export type { ChainCall, FunctionRunner } from "./runner.ts";

export interface FunctionPoolOptions {
  /** Every configured function (its file as configured). */
  functions: FunctionSpec[];
  /** Connections with functions (only their options and env reach a host). */
  connections: ConnectionSpec[];
  /** Workers per connection's host. */
  workers: number;
  /** Resident memory of one connection's host before it is restarted. */
  maxMemoryMb: number;
  defaultTimeoutMs: number;
  loadTimeoutMs: number;
  /** The most events one function may return (limits.maxBatchEvents). */
  maxEvents: number;
  /** Special networks ctx.fetch may reach (functionRuntime.allowNetworks). */
  allowNetworks: string[];
  store: FunctionStore;
  logger: Logger;
  /** Per-function run counts, errors and time for /metrics. */
  metrics?: FunctionMetrics;
  sandbox: SandboxOptions;
}

interface HostEntry {
  client: HostClient;
  /** Everything that went into the host; another value means a new host. */
  signature: string;
  /** Content hash of each of its function's files. */
  hashes: Map<string, string>;
  removeFiles(): void;
}

/**
 * The function runtime as the server sees it: one sandboxed host process per
 * connection with functions (SPEC 7: one connection's functions cannot see or change
 * another's globals, prototypes, props or memory), each started with a private copy
 * of its function files. A reload (SIGHUP) copies the files again and replaces the
 * hosts whose code or settings changed; calls already running finish on the old one.
 */
export class FunctionPool implements FunctionRunner {
  private hosts = new Map<string, HostEntry>();
  private closing = false;
  private readonly warnings: SandboxWarnings;

  private constructor(private opts: FunctionPoolOptions) {
    this.warnings = new SandboxWarnings(opts.logger);
    for (const line of opts.sandbox.info) opts.logger.info(line);
    for (const line of opts.sandbox.warnings) this.warnings.warn(line);
    for (const c of opts.connections) {
      const host = this.startHost(c, opts);
      if (host !== "same") this.hosts.set(c.id, host);
    }
  }

  /**
   * Starts a host per connection and waits until each has loaded its function files
   * (load failures are logged with the file and the error). A host that does not come
   * up in time is logged too; its calls then wait for it.
   */
  static async start(opts: FunctionPoolOptions): Promise<FunctionPool> {
    const pool = new FunctionPool(opts);
    const waitMs = opts.loadTimeoutMs * 2 + 15_000;
    const ready = await Promise.race([
      Promise.all([...pool.hosts.values()].map((h) => h.client.loaded)).then(() => true),
      Bun.sleep(waitMs).then(() => false),
    ]);
    if (!ready) opts.logger.error({ waitMs }, "a function host did not become ready in time");
    return pool;
  }

  /** How each function file loaded (an `error` for those that did not), once per function. */
  get loadReports(): LoadReport[] {
    const byId = new Map<string, LoadReport>();
    for (const h of this.hosts.values()) for (const r of h.client.loadReports) byId.set(r.id, r);
    return [...byId.values()];
  }

  runJson(call: ChainCall): Promise<string> {
    if (this.closing) return Promise.reject(new FunctionHostError("function pool is closed"));
    const host = this.hosts.get(call.connectionId);
    if (!host) {
      return Promise.reject(
        new FunctionHostError(`no functions run for connection ${call.connectionId}`),
      );
    }
    return host.client.runJson({
      event: call.event,
      meta: {
        headers: call.headers,
        sourceType: call.sourceType,
        receivedAt: call.receivedAt,
        retries: call.retries,
      },
    });
  }

  /** Runs a connection's chain (for delivery, which needs the events as values). */
  async run(call: ChainCall): Promise<ChainResult> {
    return JSON.parse(await this.runJson(call)) as ChainResult;
  }

  /**
   * Reads every function file again and applies `next` (SIGHUP): a connection whose
   * code, functions or runtime settings changed gets a new host. Its calls go on to
   * the old host until the new one has loaded its functions; then the old one finishes
   * what it holds and stops. Returns what changed, one line each.
   */
  reload(next: FunctionPoolOptions): string[] {
    if (this.closing) return [];
    const hashesBefore = new Map([...this.hosts].map(([id, h]) => [id, this.latest(id) ?? h]));
    const hashesAfter = new Map<string, HostEntry>();
    const restarted: string[] = [];
    const wanted = new Set(next.connections.map((c) => c.id));
    for (const c of next.connections) {
      const current = this.latest(c.id);
      const fresh = this.startHost(c, next, current?.signature);
      if (fresh === "same") {
        hashesAfter.set(c.id, current!);
        continue;
      }
      hashesAfter.set(c.id, fresh);
      if (!current) {
        this.hosts.set(c.id, fresh);
        continue;
      }
      restarted.push(c.id);
      this.replaceWhenLoaded(c.id, fresh);
    }
    for (const [id, host] of this.hosts) {
      if (wanted.has(id)) continue;
      this.hosts.delete(id);
      this.retire(host);
    }
    const changes = describeReload(this.opts, next, hashesBefore, hashesAfter, restarted);
    this.opts = next;
    return changes;
  }

  /** The newest host of a connection: the one still loading after a reload, else the serving one. */
  private latest(id: string): HostEntry | undefined {
    return this.incoming.get(id) ?? this.hosts.get(id);
  }

  /** Hosts started by a reload that have not loaded yet (calls still go to the old one). */
  private readonly incoming = new Map<string, HostEntry>();

  private replaceWhenLoaded(id: string, fresh: HostEntry): void {
    const superseded = this.incoming.get(id);
    if (superseded) this.retire(superseded);
    this.incoming.set(id, fresh);
    void fresh.client.loaded.then(() => {
      if (this.incoming.get(id) !== fresh || this.closing) return;
      this.incoming.delete(id);
      const old = this.hosts.get(id);
      this.hosts.set(id, fresh);
      if (old) this.retire(old);
    });
  }

  /** Lets a replaced host finish its calls, then stops it and deletes its files. */
  private retire(host: HostEntry): void {
    void host.client.drain().finally(() => host.removeFiles());
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await Promise.all(
      [...this.hosts.values(), ...this.incoming.values()].map(async (h) => {
        await h.client.close();
        h.removeFiles();
      }),
    );
  }

  /** A new host for connection `c`, or "same" when its signature is `signature` still. */
  private startHost(
    c: ConnectionSpec,
    opts: FunctionPoolOptions,
    signature?: string,
  ): "same" | HostEntry {
    const staged = stageHost(c, opts);
    if (staged.signature === signature) {
      staged.files.remove();
      return "same";
    }
    const { logger } = opts;
    const client = new HostClient({
      connection: c,
      functions: staged.functions,
      workers: opts.workers,
      maxMemoryMb: opts.maxMemoryMb,
      defaultTimeoutMs: opts.defaultTimeoutMs,
      loadTimeoutMs: opts.loadTimeoutMs,
      maxEvents: opts.maxEvents,
      command: staged.command,
      cwd: staged.files.dir,
      services: new HostServices({
        connectionId: c.id,
        chain: c.functions,
        store: opts.store,
        fetchPolicy: new FetchPolicy(opts.allowNetworks),
        logger,
      }),
      logger,
      metrics: opts.metrics,
      onSandbox: (report) => this.warnings.report(report, opts.sandbox),
      unmap: staged.files.unmap,
    });
    void client.loaded.then((reports) => {
      for (const r of reports) {
        if (!r.error) continue;
        logger.error(
          { functionId: r.id, file: r.file, connectionId: c.id, error: r.error },
          `function ${r.id} failed to load from ${r.file}: ${r.error.name}: ${r.error.message}`,
        );
      }
    });
    return {
      client,
      signature: staged.signature,
      hashes: new Map(staged.functions.map((f) => [f.id, f.hash ?? ""])),
      removeFiles: staged.files.remove,
    };
  }
}
