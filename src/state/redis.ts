import { RedisClient } from "bun";
import type { Logger } from "pino";
import { StorageUnavailableError } from "../storage/unavailable.ts";

export interface RedisConnectionOptions {
  logger: Logger;
  /** Prefix of every key sluice writes (several installs may share one Redis). */
  keyPrefix?: string;
  /** A command without an answer for this long marks Redis down and reconnects. */
  commandTimeoutMs?: number;
  /** How often Redis is pinged to tell `/ready` (and to notice a hung server). */
  pingIntervalMs?: number;
}

/** Reachability of a backend, for `/ready` and the logs (no secrets: the URL's host only). */
export interface BackendHealth {
  ok: boolean;
  error?: string;
}

/**
 * One connection to Redis (Bun's built-in client, chosen by measurement in
 * bench/scaleout/clients.ts: about half ioredis' round trip and more commands per
 * second when pipelined), shared by the Redis-backed stores of a sluice instance.
 *
 * Commands never wait for a connection: while Redis is unreachable each one fails at
 * once with StorageUnavailableError (ingest answers 503, never a 2xx for an event it
 * could not check), and the connection is retried in the background until Redis
 * answers again: recovery needs no restart. A command left unanswered past the timeout
 * (a hung server) counts as a lost connection.
 */
export class RedisConnection {
  readonly keyPrefix: string;
  private client: RedisClient;
  private up = false;
  private lastError = "not connected yet";
  private closed = false;
  private connecting: Promise<void> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private retryDelayMs = 100;
  private readonly pingTimer: ReturnType<typeof setInterval>;
  private pending = 0;
  private lastAnswerAt = Date.now();
  private readonly shas = new Map<string, string>();
  private readonly timeoutMs: number;
  private readonly where: string;

  private constructor(
    private readonly url: string,
    private readonly opts: RedisConnectionOptions,
  ) {
    this.keyPrefix = opts.keyPrefix ?? "sluice";
    this.timeoutMs = opts.commandTimeoutMs ?? 2000;
    this.where = redactedHost(url);
    this.client = this.newClient();
    this.pingTimer = setInterval(() => this.watch(), opts.pingIntervalMs ?? 1000);
    this.pingTimer.unref?.();
  }

  /**
   * Connects to `url`. Resolves even when Redis is unreachable (the instance starts,
   * `/ready` says 503 and the connection is retried), after one attempt.
   */
  static async open(url: string, opts: RedisConnectionOptions): Promise<RedisConnection> {
    const conn = new RedisConnection(url, opts);
    await conn.connect();
    return conn;
  }

  health(): BackendHealth {
    return this.up ? { ok: true } : { ok: false, error: `redis ${this.where}: ${this.lastError}` };
  }

  /**
   * Sends one command. Throws StorageUnavailableError when Redis cannot be reached;
   * a Redis error reply (a bug: wrong type, bad script) is thrown as it is.
   */
  async send(command: string, args: string[]): Promise<unknown> {
    if (!this.up) throw new StorageUnavailableError("redis", this.lastError);
    this.pending++;
    try {
      const answer = await this.client.send(command, args);
      this.lastAnswerAt = Date.now();
      return answer;
    } catch (err) {
      if (!isConnectionError(err)) throw err;
      this.markDown((err as Error).message);
      throw new StorageUnavailableError("redis", (err as Error).message, { cause: err });
    } finally {
      this.pending--;
    }
  }

  /** Runs a Lua script by its SHA1, loading it once when Redis does not have it (after a restart). */
  async eval(script: string, keys: string[], args: string[]): Promise<unknown> {
    let sha = this.shas.get(script);
    if (sha === undefined) {
      sha = new Bun.CryptoHasher("sha1").update(script).digest("hex");
      this.shas.set(script, sha);
    }
    const params = [String(keys.length), ...keys, ...args];
    try {
      return await this.send("EVALSHA", [sha, ...params]);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
      return this.send("EVAL", [script, ...params]);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.pingTimer);
    clearTimeout(this.retryTimer);
    this.up = false;
    this.lastError = "closed";
    this.client.close();
  }

  private newClient(): RedisClient {
    const client = new RedisClient(this.url, {
      // Reconnection is ours (below): Bun's gives up after maxRetries for good.
      autoReconnect: false,
      // Never queue while disconnected: a request must fail now, not hang.
      enableOfflineQueue: false,
      connectionTimeout: this.timeoutMs,
    });
    client.onclose = (err) => {
      if (client !== this.client || this.closed) return;
      this.markDown(err?.message ?? "connection closed");
    };
    return client;
  }

  private connect(): Promise<void> {
    this.connecting ??= (async () => {
      const failure = await this.attempt();
      this.connecting = undefined;
      if (failure !== undefined) this.markDown(failure);
    })();
    return this.connecting;
  }

  /** One connection attempt: undefined on success, else why it failed. */
  private async attempt(): Promise<string | undefined> {
    const wasDown = this.lastError !== "not connected yet";
    try {
      await this.client.connect();
      // LOADING (a restarted Redis reading its files) answers PING with an error.
      await this.client.send("PING", []);
    } catch (err) {
      return (err as Error).message;
    }
    this.up = true;
    this.retryDelayMs = 100;
    this.lastAnswerAt = Date.now();
    if (wasDown) this.opts.logger.info({ redis: this.where }, "redis reachable again");
    return undefined;
  }

  private markDown(reason: string): void {
    if (this.closed) return;
    if (this.up) this.opts.logger.error({ redis: this.where, reason }, "redis unreachable");
    this.up = false;
    this.lastError = reason;
    if (this.retryTimer !== undefined || this.connecting !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.closed) return;
      // A fresh client: the old one may hold a half-open socket to a hung server.
      const old = this.client;
      this.client = this.newClient();
      old.close();
      void this.connect();
    }, this.retryDelayMs);
    this.retryTimer.unref?.();
    this.retryDelayMs = Math.min(1000, this.retryDelayMs * 2);
  }

  /** Pings while idle; a command unanswered past the timeout means the server hung. */
  private watch(): void {
    if (!this.up || this.closed) return;
    if (this.pending > 0 && Date.now() - this.lastAnswerAt > this.timeoutMs) {
      this.markDown(`no answer for ${this.timeoutMs} ms`);
      return;
    }
    if (this.pending === 0) {
      this.send("PING", []).catch(() => {});
    }
  }
}

/** Errors that mean "Redis cannot be reached now" rather than "this command is wrong". */
function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: string }).code ?? "";
  if (code.startsWith("ERR_REDIS_CONNECTION") || code === "ERR_REDIS_CONNECTION_TIMEOUT")
    return true;
  if (code === "ECONNREFUSED" || code === "ECONNRESET" || code === "EPIPE") return true;
  return /^(LOADING|MASTERDOWN|TRYAGAIN|READONLY)/.test(err.message);
}

/** `host:port` of a Redis URL, without user or password. */
function redactedHost(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || "6379"}`;
  } catch {
    return "(unparsable url)";
  }
}
