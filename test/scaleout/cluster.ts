import { rmSync, writeFileSync } from "node:fs";
import pino from "pino";
import { NatsLogStream } from "../../src/log/nats/nats-log.ts";
import {
  basic,
  makeTestConfig,
  type SpawnedServer,
  spawnServer,
  type TestKeys,
} from "../support/server.ts";
import { freshPrefix } from "./fixtures.ts";
import type { NatsServerProcess, ServerProcess } from "./servers.ts";

/**
 * N sluice processes as N machines behind a load balancer would run them: each its own
 * data dir, all with the same config on one nats-server (`log.backend: nats`, one
 * stream of their own) and one redis-server (`state.backend: redis`, one key prefix).
 */
export interface Cluster {
  readonly size: number;
  readonly keys: TestKeys;
  /** The stream and subject prefix this cluster's instances share. */
  readonly stream: string;
  readonly subjectPrefix: string;
  url(i: number): string;
  /** Instance `i`'s config file (for CLI commands). */
  configFile(i: number): string;
  running(i: number): boolean;
  /** Output (pino JSON lines) of instance `i` so far. */
  output(i: number): string;
  /** POSTs `/v1/track` to instance `i`. */
  track(
    i: number,
    key: string,
    messageId: string,
    extra?: Record<string, unknown>,
  ): Promise<Response>;
  /** POSTs `/v1/batch` to instance `i`. */
  batch(i: number, key: string, batch: Record<string, unknown>[]): Promise<Response>;
  ready(i: number): Promise<number>;
  /** SIGKILL of instance `i` (a crash); waits for the exit. */
  kill(i: number): Promise<void>;
  /** Starts instance `i` again on its data dir. */
  restart(i: number): Promise<void>;
  /** Every message in the stream, in order: messageId and sourceId of each stored event. */
  stored(): Promise<{ messageId: string; sourceId: string }[]>;
  cleanup(): Promise<void>;
}

export interface ClusterOptions {
  size: number;
  nats: NatsServerProcess;
  redis: ServerProcess;
  /** Extra fields of source `web` (rateLimit, …). */
  web?: Record<string, unknown>;
  /** Per instance: more top-level config (connections, …), merged over the shared one. */
  config?: (i: number) => Record<string, unknown>;
  /** Extra settings of `log` (ackWaitSeconds, …). */
  log?: Record<string, unknown>;
  name: string;
}

export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  const prefix = freshPrefix(opts.name);
  const stream = prefix.replace(/[^A-Za-z0-9_-]/g, "_").toUpperCase();
  const subjectPrefix = `${prefix.replace(/[^A-Za-z0-9_-]/g, "_")}.events`;
  const shared = {
    log: { backend: "nats", servers: [opts.nats.url], stream, subjectPrefix, ...opts.log },
    state: { backend: "redis", url: opts.redis.url, keyPrefix: prefix },
    // Instances of a test run are idle otherwise: no search index thread per process.
    admin: { searchIndex: false },
  };
  const first = makeTestConfig({ web: opts.web, config: shared });
  const made = [first];
  for (let i = 1; i < opts.size; i++) made.push({ ...makeTestConfig(), keys: first.keys });
  // The same write keys (the first config's) everywhere, as instances behind one balancer.
  made.forEach((m, i) => {
    writeFileSync(m.configFile, JSON.stringify({ ...first.config, ...opts.config?.(i) }));
  });
  const procs: (SpawnedServer | undefined)[] = [];
  const cleanup = async () => {
    for (const p of procs) {
      if (!p || p.proc.exitCode !== null || p.proc.signalCode !== null) continue;
      p.proc.kill("SIGTERM");
      const killer = setTimeout(() => p.proc.kill("SIGKILL"), 10_000);
      await p.proc.exited;
      clearTimeout(killer);
    }
    for (const m of made) rmSync(m.dir, { recursive: true, force: true });
  };
  try {
    const started = await Promise.all(made.map((m) => spawnServer(m.configFile, {}, 30_000)));
    procs.push(...started);
  } catch (err) {
    await cleanup();
    throw err;
  }
  const proc = (i: number) => {
    const p = procs[i];
    if (!p) throw new Error(`instance ${i} is not running`);
    return p;
  };
  const post = (i: number, path: string, key: string, body: unknown) =>
    fetch(`${proc(i).url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...basic(key) },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
  return {
    size: opts.size,
    keys: first.keys,
    stream,
    subjectPrefix,
    url: (i) => proc(i).url,
    configFile: (i) => made[i]!.configFile,
    running: (i) => procs[i] !== undefined && procs[i]!.proc.exitCode === null,
    output: (i) => procs[i]?.output() ?? "",
    track: (i, key, messageId, extra = {}) =>
      post(i, "/v1/track", key, { messageId, userId: "u1", event: "Scale", ...extra }),
    batch: (i, key, batch) => post(i, "/v1/batch", key, { batch }),
    ready: async (i) => (await fetch(`${proc(i).url}/ready`)).status,
    async kill(i) {
      const p = proc(i);
      p.proc.kill("SIGKILL");
      await p.proc.exited;
      procs[i] = undefined;
    },
    async restart(i) {
      procs[i] = await spawnServer(made[i]!.configFile, {}, 30_000);
    },
    stored: () => readStream(opts.nats.url, stream, subjectPrefix),
    cleanup,
  };
}

/** Every message of a stream, read by a fresh durable consumer (the server's count says when done). */
export async function readStream(
  server: string,
  stream: string,
  subjectPrefix: string,
): Promise<{ messageId: string; sourceId: string }[]> {
  const log = await NatsLogStream.open({
    servers: [server],
    stream,
    subjectPrefix,
    logger: pino({ level: "silent" }),
  });
  const decoder = new TextDecoder();
  try {
    const consumer = await log.consumer(`audit-${crypto.randomUUID()}`, { start: "oldest" });
    const out: { messageId: string; sourceId: string }[] = [];
    for (;;) {
      const batch = await consumer.read(500, 1_000);
      if (batch.length === 0) break;
      for (const r of batch) {
        const e = JSON.parse(decoder.decode(r.payload)) as { messageId: string };
        out.push({ messageId: e.messageId, sourceId: r.sourceId });
      }
      await consumer.commit(batch.at(-1)!.cursor);
    }
    return out;
  } finally {
    await log.close();
  }
}
