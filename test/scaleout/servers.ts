import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Real nats-server and redis-server processes for the scale-out tests and bench: each
 * on a free loopback port with its own temp dir, stopped by its PID (never by name),
 * and restartable on the same port and data (an outage and its recovery).
 */
export interface ServerProcess {
  readonly url: string;
  readonly port: number;
  /** The running process's id (undefined while stopped). */
  readonly pid: number | undefined;
  /** Whether the process is running now. */
  readonly running: boolean;
  /** Starts it again on the same port and data dir (after `stop` or `kill`). */
  start(): Promise<void>;
  /** SIGTERM, then SIGKILL after a grace period; waits for the exit. */
  stop(): Promise<void>;
  /** SIGKILL (a crash); waits for the exit. */
  kill(): Promise<void>;
  /** Stops the process and deletes its temp dir. */
  cleanup(): Promise<void>;
}

/** A program on PATH or in the sbin/bin dirs Debian puts it in; undefined when missing. */
export function findProgram(name: string): string | undefined {
  const found = Bun.which(name, { PATH: `${process.env.PATH ?? ""}:/usr/sbin:/usr/bin:/sbin` });
  return found ?? undefined;
}

/** Why the scale-out tests cannot run here (a missing server program), or undefined. */
export function missingServers(): string | undefined {
  const missing = ["nats-server", "redis-server"].filter((p) => !findProgram(p));
  if (missing.length === 0) return undefined;
  return `missing ${missing.join(", ")}: install them (apt-get install -y ${missing.join(" ")}); npm test's pretest does as root`;
}

/** A port that was free a moment ago. */
export function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

/** nats-server's version as [major, minor, patch]. */
export function natsServerVersion(bin = findProgram("nats-server")): [number, number, number] {
  if (!bin) throw new Error("nats-server is not installed");
  const out = Bun.spawnSync([bin, "--version"]).stdout.toString();
  const m = /v?(\d+)\.(\d+)\.(\d+)/.exec(out);
  if (!m) throw new Error(`cannot read nats-server's version from ${JSON.stringify(out)}`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/**
 * Whether this nats-server has `jetstream.sync_interval` (2.10 and later): with
 * `sync_interval: always` JetStream fsyncs each message before its publish ack.
 */
export function natsSupportsSyncAlways(version = natsServerVersion()): boolean {
  return version[0] > 2 || (version[0] === 2 && version[1] >= 10);
}

/** The nats-server config the tests run: JetStream on file storage, fsync per message where supported. */
export function natsConfig(port: number, storeDir: string, syncAlways: boolean): string {
  return [
    `listen: "127.0.0.1:${port}"`,
    "jetstream {",
    `  store_dir: ${JSON.stringify(storeDir)}`,
    // 2.9 refuses the unknown field; there acks come before the OS flushes (see README).
    ...(syncAlways ? ["  sync_interval: always"] : []),
    "}",
    "",
  ].join("\n");
}

interface Spawned {
  proc: ReturnType<typeof Bun.spawn>;
}

async function waitForPort(port: number, proc: ReturnType<typeof Bun.spawn>, what: string) {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`${what} exited with ${proc.exitCode}`);
    try {
      const socket = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
      socket.end();
      return;
    } catch {
      await Bun.sleep(25);
    }
  }
  throw new Error(`${what} did not listen on ${port} within 15 s`);
}

function managed(opts: {
  name: string;
  port: number;
  dir: string;
  url: string;
  cmd: () => string[];
  ready?: (port: number) => Promise<void>;
}): ServerProcess {
  let current: Spawned | undefined;
  const logFile = join(opts.dir, `${opts.name}.log`);
  const exited = async (signal: NodeJS.Signals, graceMs: number) => {
    const c = current;
    current = undefined;
    if (!c || c.proc.exitCode !== null || c.proc.signalCode !== null) return;
    c.proc.kill(signal);
    const timer = setTimeout(() => c.proc.kill("SIGKILL"), graceMs);
    await c.proc.exited;
    clearTimeout(timer);
  };
  const server: ServerProcess = {
    url: opts.url,
    port: opts.port,
    get pid() {
      return server.running ? current?.proc.pid : undefined;
    },
    get running() {
      return current !== undefined && current.proc.exitCode === null;
    },
    async start() {
      if (server.running) return;
      const proc = Bun.spawn(opts.cmd(), {
        stdout: Bun.file(logFile),
        stderr: Bun.file(`${logFile}.err`),
      });
      current = { proc };
      try {
        await waitForPort(opts.port, proc, opts.name);
        await opts.ready?.(opts.port);
      } catch (err) {
        await exited("SIGKILL", 0);
        const log = await Bun.file(`${logFile}.err`)
          .text()
          .catch(() => "");
        const out = await Bun.file(logFile)
          .text()
          .catch(() => "");
        throw new Error(`${(err as Error).message}\n${out.slice(-2000)}${log.slice(-2000)}`);
      }
    },
    stop: () => exited("SIGTERM", 5000),
    kill: () => exited("SIGKILL", 0),
    async cleanup() {
      await exited("SIGKILL", 0);
      rmSync(opts.dir, { recursive: true, force: true });
    },
  };
  return server;
}

export interface NatsServerProcess extends ServerProcess {
  /** Whether this server fsyncs each message before acking it (`sync_interval: always`). */
  readonly syncAlways: boolean;
  readonly version: string;
}

/** Starts `nats-server -js` on a free port with file storage in a temp dir. */
export async function startNatsServer(): Promise<NatsServerProcess> {
  const bin = findProgram("nats-server");
  if (!bin) throw new Error(missingServers());
  const version = natsServerVersion(bin);
  const syncAlways = natsSupportsSyncAlways(version);
  const dir = mkdtempSync(join(tmpdir(), "sluice-nats-"));
  const port = freePort();
  const conf = join(dir, "nats.conf");
  writeFileSync(conf, natsConfig(port, join(dir, "js"), syncAlways));
  const base = managed({
    name: "nats-server",
    port,
    dir,
    url: `nats://127.0.0.1:${port}`,
    cmd: () => [bin, "-js", "-c", conf],
  });
  const server = Object.assign(base, { syncAlways, version: version.join(".") });
  try {
    await server.start();
  } catch (err) {
    await server.cleanup();
    throw err;
  }
  return server;
}

/** Starts `redis-server` on a free port with its files (AOF, fsync every second) in a temp dir. */
export async function startRedisServer(): Promise<ServerProcess> {
  const bin = findProgram("redis-server");
  if (!bin) throw new Error(missingServers());
  const dir = mkdtempSync(join(tmpdir(), "sluice-redis-"));
  const port = freePort();
  const server = managed({
    name: "redis-server",
    port,
    dir,
    url: `redis://127.0.0.1:${port}`,
    cmd: () => [
      bin,
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--save",
      "",
      "--appendonly",
      "yes",
      "--appendfsync",
      "everysec",
      "--daemonize",
      "no",
    ],
  });
  try {
    await server.start();
  } catch (err) {
    await server.cleanup();
    throw err;
  }
  return server;
}
