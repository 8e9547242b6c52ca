import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateWriteKey, hashWriteKey } from "../../src/auth/keys.ts";
import { cpuSeconds, freePort, memoryMb, pinned, stopProcess, waitForHttp } from "./proc.ts";

const ROOT = join(import.meta.dir, "..", "..");
const BUN = process.execPath;

/** A server under load: its own process, so its memory and CPU are its own. */
export interface BenchServer {
  kind: "sluice" | "baseline";
  pid: number;
  url: string;
  /** Write keys (sluice only). */
  keys: BenchKeys;
  /** Resident memory right after start, before any load, in MB. */
  idleRssMb: number;
  /** Milliseconds from starting the process until it answered /health. */
  startMs: number;
  cpuSeconds(): number;
  memoryMb(): { rss: number; hwm: number };
  stop(): Promise<void>;
  /** Kills the process (-9) and starts it again on the same config and data (capacity). */
  killAndRestart(): Promise<BenchServer>;
  /** Stops the process cleanly (SIGTERM) and starts it again on the same data (capacity). */
  stopAndRestart(): Promise<BenchServer>;
}

export interface BenchKeys {
  /** Browser key of source `bench` (no practical rate limit). */
  browser: string;
  /** Server key of source `bench`. */
  server: string;
  /** Server key of source `limited` (1 event/s, burst 1: nearly every request gets 429). */
  limited: string;
}

export interface ServerOptions {
  /** CPU to pin the server to (taskset), if any. */
  cpu?: number;
  /** Adds a connection `con_bench` with one pass-through function (for /api/funcs). */
  withFunctions?: boolean;
  /** Writes a CPU profile (.cpuprofile and Markdown) of the sluice process here on exit. */
  profileDir?: string;
  /** Script that runs sluice's CLI (default src/main.ts); experiments wrap it. */
  entry?: string;
  /** Top-level config sections added to sluice's (e.g. `admin`). */
  config?: Record<string, unknown>;
  /** Environment added to the server's (e.g. JSC options, bench/experiments/batch-memory.ts). */
  env?: Record<string, string>;
  /** Runs before the server starts, with its (empty) data dir: to fill it (bench/capacity.ts). */
  prepare?: (dataDir: string) => Promise<void>;
  /** Gets each line the server writes to stderr as it comes, instead of the log file. */
  onStderr?: (line: string) => void;
}

async function launch(
  kind: BenchServer["kind"],
  cmd: string[],
  dir: string,
  keys: BenchKeys,
  opts: ServerOptions,
  port: number,
  env: Record<string, string> = {},
): Promise<BenchServer> {
  const logFile = join(dir, "server.log");
  const started = performance.now();
  const proc = Bun.spawn(pinned(opts.cpu, cmd), {
    cwd: ROOT,
    // PORT, SLUICE_DATA_DIR and SLUICE_CONFIG would override the bench's own config.
    env: { ...process.env, PORT: "", SLUICE_DATA_DIR: "", SLUICE_CONFIG: "", ...env },
    stdout: Bun.file(logFile),
    stderr: opts.onStderr ? "pipe" : Bun.file(`${logFile}.err`),
  });
  let stderrTail = "";
  if (opts.onStderr) {
    const each = opts.onStderr;
    void lines(proc.stderr as ReadableStream<Uint8Array>, (line) => {
      stderrTail = `${stderrTail.slice(-4000)}${line}\n`;
      each(line);
    });
  }
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}/health`, proc, 120_000);
  } catch (err) {
    await stopProcess(proc);
    const log = opts.onStderr ? stderrTail : await Bun.file(`${logFile}.err`).text();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${kind} did not start: ${(err as Error).message}\n${log}`);
  }
  const startMs = performance.now() - started;
  await Bun.sleep(500); // let start-up allocations settle before reading idle memory
  return {
    kind,
    pid: proc.pid,
    url,
    keys,
    idleRssMb: memoryMb(proc.pid).rss,
    startMs,
    cpuSeconds: () => cpuSeconds(proc.pid),
    memoryMb: () => memoryMb(proc.pid),
    async stop() {
      await stopProcess(proc);
      rmSync(dir, { recursive: true, force: true });
    },
    async killAndRestart() {
      proc.kill(9);
      await proc.exited;
      return launch(kind, cmd, dir, keys, opts, port, env);
    },
    async stopAndRestart() {
      await stopProcess(proc, 120_000);
      return launch(kind, cmd, dir, keys, opts, port, env);
    },
  };
}

async function lines(stream: ReadableStream<Uint8Array>, each: (line: string) => void) {
  const decoder = new TextDecoder();
  let rest = "";
  for await (const chunk of stream) {
    const parts = (rest + decoder.decode(chunk, { stream: true })).split("\n");
    rest = parts.pop() ?? "";
    for (const line of parts) each(line);
  }
}

/** Starts the bare baseline (`single`) or the parse-and-append one (`batch`). */
export function startBaseline(mode: "single" | "batch", opts: ServerOptions = {}) {
  const dir = mkdtempSync(join(tmpdir(), "sluice-bench-"));
  const port = freePort();
  const cmd = [
    BUN,
    join(ROOT, "bench", "baseline.ts"),
    mode,
    String(port),
    join(dir, "out.ndjson"),
  ];
  return launch("baseline", cmd, dir, { browser: "", server: "", limited: "" }, opts, port);
}

/**
 * Starts `sluice serve` as a user would, on a temp config and data dir: source `bench`
 * with a limit no run reaches, and source `limited` whose bucket is always empty.
 */
export async function startSluice(opts: ServerOptions = {}) {
  const dir = mkdtempSync(join(tmpdir(), "sluice-bench-"));
  const port = freePort();
  const keys: BenchKeys = {
    browser: generateWriteKey("wk_browser"),
    server: generateWriteKey("wk_server"),
    limited: generateWriteKey("wk_limited"),
  };
  const config: Record<string, unknown> = {
    server: { port, host: "127.0.0.1", dataDir: "./data" },
    sources: [
      {
        id: "bench",
        rateLimit: { eventsPerSecond: 1e9, burst: 1e9 },
        writeKeys: [
          { id: "wk_browser", type: "browser", hash: hashWriteKey(keys.browser) },
          { id: "wk_server", type: "server", hash: hashWriteKey(keys.server) },
        ],
      },
      {
        id: "limited",
        rateLimit: { eventsPerSecond: 1, burst: 1 },
        writeKeys: [{ id: "wk_limited", type: "server", hash: hashWriteKey(keys.limited) }],
      },
    ],
  };
  if (opts.withFunctions) {
    config.functions = [
      { id: "passthrough", file: join(ROOT, "bench", "functions", "passthrough.ts") },
    ];
    config.connections = [
      {
        id: "con_bench",
        source: "bench",
        destination: { type: "file", path: "./archive/bench.ndjson" },
        functions: ["passthrough"],
      },
    ];
  }
  Object.assign(config, opts.config);
  const configFile = join(dir, "sluice.yaml");
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  if (opts.prepare) {
    mkdirSync(join(dir, "data"), { recursive: true });
    await opts.prepare(join(dir, "data"));
  }
  const profile = opts.profileDir
    ? ["--cpu-prof", "--cpu-prof-md", `--cpu-prof-dir=${opts.profileDir}`]
    : [];
  const entry = opts.entry ?? join(ROOT, "src", "main.ts");
  const cmd = [BUN, ...profile, entry, "serve", "--config", configFile];
  return launch("sluice", cmd, dir, keys, opts, port, { SLUICE_LOG_LEVEL: "warn", ...opts.env });
}
