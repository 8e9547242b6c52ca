import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import pino from "pino";
import { type Sluice, startSluice } from "../../src/app.ts";
import { generateWriteKey, hashWriteKey } from "../../src/auth/keys.ts";
import { parseConfig } from "../../src/config/load.ts";
import type { Clock } from "../../src/delivery/clock.ts";
import { createLogger } from "../../src/logger.ts";
import { waitFor } from "./wait.ts";

const ROOT = join(import.meta.dir, "..", "..");
export const BUN = process.execPath;
export const MAIN = join(ROOT, "src", "main.ts");

/** Write keys the harness makes for each test server. */
export interface TestKeys {
  /** Browser key of source `web`. */
  browser: string;
  /** Server key of source `web`. */
  server: string;
  /** Server key of source `other`. */
  other: string;
}

export interface TestServerOptions {
  /** Deep-merged over the default test config (sources are replaced if given). */
  config?: Record<string, unknown>;
  /** Extra fields for source `web` (allowedOrigins, rateLimit, …). */
  web?: Record<string, unknown>;
  /** Files written into the temp dir before start (path relative to it: content). */
  files?: Record<string, string>;
  /** Delivery's clock (a compressed one runs retry windows of hours in seconds). */
  clock?: Clock;
}

export interface TestServer {
  url: string;
  port: number;
  dir: string;
  dataDir: string;
  configFile: string;
  logFile: string;
  keys: TestKeys;
  /** The config the server starts with: changes to it take effect at `restart()`. */
  config: Record<string, unknown>;
  /** The routes the running server's HTTP app serves. */
  routes(): { method: string; path: string }[];
  /** POSTs JSON (or a raw body) with the given headers. */
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
  /** Stops the server (graceful) and starts it again on the same data dir and port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  /** Stops and deletes the temp dir. */
  cleanup(): Promise<void>;
}

/** Makes a temp dir with a config (two sources, hashed keys) for a server to use. */
export function makeTestConfig(opts: TestServerOptions = {}) {
  const dir = mkdtempSync(join(tmpdir(), "sluice-test-"));
  const keys: TestKeys = {
    browser: generateWriteKey("wk_browser"),
    server: generateWriteKey("wk_server"),
    other: generateWriteKey("wk_other"),
  };
  const config: Record<string, unknown> = {
    server: { port: 0, host: "127.0.0.1", dataDir: "./data" },
    sources: [
      {
        id: "web",
        name: "Website",
        writeKeys: [
          { id: "wk_browser", type: "browser", hash: hashWriteKey(keys.browser) },
          { id: "wk_server", type: "server", hash: hashWriteKey(keys.server) },
        ],
        ...opts.web,
      },
      {
        id: "other",
        writeKeys: [{ id: "wk_other", type: "server", hash: hashWriteKey(keys.other) }],
      },
    ],
    ...opts.config,
  };
  for (const [name, content] of Object.entries(opts.files ?? {})) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  const configFile = join(dir, "sluice.yaml");
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  return {
    dir,
    keys,
    configFile,
    config,
    dataDir: join(dir, "data"),
    logFile: join(dir, "sluice.log"),
  };
}

/** Starts a real sluice (real listener on a free port, real data dir) for a test. */
export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const made = makeTestConfig(opts);
  const logger = createLogger("debug", pino.destination({ dest: made.logFile, sync: true }));
  let port = 0;
  let sluice: Sluice;
  const boot = async () => {
    const loaded = parseConfig(made.config, made.configFile, {});
    loaded.config.server.port = port;
    sluice = await startSluice(loaded, { logger, clock: opts.clock });
    port = sluice.port;
  };
  try {
    await boot();
  } catch (err) {
    // A start that fails (a test of a refused config) leaves no temp dir behind.
    rmSync(made.dir, { recursive: true, force: true });
    throw err;
  }
  const server: TestServer = {
    ...made,
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    routes: () => sluice.routes,
    post(path, body, headers = {}) {
      const raw = typeof body === "string" || body instanceof Uint8Array;
      return fetch(`http://127.0.0.1:${port}${path}`, {
        method: "POST",
        headers: raw ? headers : { "content-type": "application/json", ...headers },
        body: raw ? (body as string | Uint8Array) : JSON.stringify(body),
      });
    },
    async restart() {
      await sluice.stop();
      await boot();
    },
    stop: () => sluice.stop(),
    async cleanup() {
      await sluice.stop();
      rmSync(made.dir, { recursive: true, force: true });
    },
  };
  return server;
}

/** `Authorization: Basic base64(key:)`. */
export function basic(key: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${key}:`).toString("base64")}` };
}

/** Parses the NDJSON `sluice log tail --from-start` would print, read straight from the log. */
export async function storedEvents(dataDir: string): Promise<Record<string, unknown>[]> {
  const { tailLog } = await import("../../src/cli/log.ts");
  const lines: string[] = [];
  await tailLog({
    dataDir,
    fromStart: true,
    follow: false,
    lines: 0,
    write: (l) => lines.push(l),
  });
  return lines.map((l) => JSON.parse(l));
}

export interface SpawnedServer {
  proc: ReturnType<typeof Bun.spawn>;
  port: number;
  url: string;
  output: () => string;
}

/** Runs `sluice serve` as a child process, as a user would, and waits until it listens. */
export async function spawnServer(
  configFile: string,
  env: Record<string, string> = {},
  timeoutMs = 15_000,
): Promise<SpawnedServer> {
  const proc = Bun.spawn([BUN, MAIN, "serve", "--config", configFile], {
    env: { ...process.env, SLUICE_LOG_LEVEL: "info", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  let out = "";
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
      out += decoder.decode(chunk);
    }
  };
  void collect(proc.stdout as ReadableStream<Uint8Array>);
  void collect(proc.stderr as ReadableStream<Uint8Array>);
  const started = /"port":(\d+)[^\n]*"msg":"sluice started"/;
  const m = await waitFor(() => started.exec(out) ?? proc.exitCode !== null, {
    timeoutMs,
  }).catch(() => undefined);
  if (m && m !== true) {
    const port = Number(m[1]);
    return { proc, port, url: `http://127.0.0.1:${port}`, output: () => out };
  }
  proc.kill(9);
  throw new Error(`server did not start:\n${out}`);
}

/** Runs a sluice CLI command to completion. */
export async function runCli(args: string[], env: Record<string, string> = {}, cwd?: string) {
  const proc = Bun.spawn([BUN, MAIN, ...args], {
    env: { ...process.env, ...env },
    stdout: "pipe",
    stderr: "pipe",
    cwd,
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { stdout, stderr, code };
}

/** The messageIds `sluice log tail --from-start` prints for a test config, in log order. */
export async function tailIds(made: { configFile: string }): Promise<string[]> {
  const tail = await runCli(["log", "tail", "--from-start", "--config", made.configFile]);
  if (tail.code !== 0) throw new Error(`log tail exited ${tail.code}: ${tail.stderr}`);
  return tail.stdout
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => String((JSON.parse(l) as { messageId: string }).messageId));
}
