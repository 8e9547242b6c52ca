import { afterEach } from "bun:test";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUN, MAIN, spawnServer } from "./server.ts";
import { waitFor } from "./wait.ts";

/** A sluice CLI command running as a child process, with its output collected. */
export interface RunningCli {
  proc: ReturnType<typeof Bun.spawn>;
  /** stdout and stderr so far, interleaved as they arrived. */
  output(): string;
  /** stdout so far. */
  stdout(): string;
  /** Waits until the output matches `re`; throws (with the output) after `timeoutMs`. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
}

/** Starts `sluice <args>` in the background (for `serve` without `--config`, `log tail --follow`). */
export function startCli(
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string } = {},
): RunningCli {
  const proc = Bun.spawn([BUN, MAIN, ...args], {
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd,
    stdout: "pipe",
    stderr: "pipe",
  });
  let out = "";
  let stdout = "";
  const collect = async (stream: ReadableStream<Uint8Array>, isStdout: boolean) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
      const text = decoder.decode(chunk, { stream: true });
      out += text;
      if (isStdout) stdout += text;
    }
  };
  // Both end when the process has exited and its last output is read.
  const collected = Promise.all([
    collect(proc.stdout as ReadableStream<Uint8Array>, true),
    collect(proc.stderr as ReadableStream<Uint8Array>, false),
  ]);
  return {
    proc,
    output: () => out,
    stdout: () => stdout,
    async waitFor(re, timeoutMs = 10_000) {
      const exited = await waitFor(() => re.exec(out) ?? proc.exitCode !== null, {
        timeoutMs,
        what: () => `${re} in the output of sluice ${args.join(" ")}:\n${out}`,
      });
      if (exited !== true) return exited as RegExpExecArray;
      await collected; // the process is gone: read the rest of what it wrote
      const last = re.exec(out);
      if (last) return last;
      throw new Error(`no ${re} in the output of sluice ${args.join(" ")}:\n${out}`);
    },
  };
}

/** The port a started server logged, once it listens. */
export async function startedPort(cli: RunningCli, timeoutMs = 15_000): Promise<number> {
  const m = await cli.waitFor(/"port":(\d+)[^\n]*"msg":"sluice started"/, timeoutMs);
  return Number(m[1]);
}

/** A port that was free a moment ago. */
export function freePort(): number {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = s.port!;
  s.stop(true);
  return port;
}

/** `count` valid track events with messageIds `${prefix}-0` … */
export function trackEvents(prefix: string, count: number): Record<string, unknown>[] {
  return Array.from({ length: count }, (_, i) => ({
    type: "track",
    event: "Durability Checked",
    userId: `user-${i % 7}`,
    messageId: `${prefix}-${i}`,
    properties: { i },
  }));
}

/** POSTs a `/v1/batch` with a server key; the caller checks the status. */
export function postBatch(url: string, key: string, batch: unknown[]): Promise<Response> {
  return fetch(`${url}/v1/batch`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-write-key": key },
    body: JSON.stringify({ batch }),
  });
}

/** Posts a batch and expects every event in it stored or deduplicated. */
export async function sendBatch(url: string, key: string, batch: unknown[]): Promise<void> {
  const res = await postBatch(url, key, batch);
  const body = (await res.json()) as { accepted?: number; duplicates?: number };
  if (res.status !== 200 || (body.accepted ?? 0) + (body.duplicates ?? 0) !== batch.length) {
    throw new Error(`batch not stored: ${res.status} ${JSON.stringify(body)}`);
  }
}

/** Segment files of a data dir's event log, oldest first, with their sizes. */
export function segmentFiles(dataDir: string): { path: string; size: number }[] {
  const dir = join(dataDir, "log");
  return readdirSync(dir)
    .filter((name) => name.endsWith(".seg"))
    .sort()
    .map((name) => ({ path: join(dir, name), size: statSync(join(dir, name)).size }));
}

/** Waits for a child to exit; kills it (-9) and fails if it does not within `timeoutMs`. */
export async function exitCode(
  proc: ReturnType<typeof Bun.spawn>,
  timeoutMs = 10_000,
): Promise<number> {
  const timeout = Bun.sleep(timeoutMs).then(() => "timeout" as const);
  const code = await Promise.race([proc.exited, timeout]);
  if (code === "timeout") {
    proc.kill(9);
    throw new Error(`process ${proc.pid} did not exit within ${timeoutMs} ms`);
  }
  return code;
}

/**
 * The temp dirs and spawned processes of a test file, registered for cleanup: after each
 * test every process still running is killed (-9) and, once all have exited, every dir
 * deleted. `spawn` starts a server and registers it.
 */
export function cleanedAfterEach() {
  const dirs: string[] = [];
  const procs: { proc: { kill(signal?: number): void; exited: Promise<unknown> } }[] = [];
  afterEach(async () => {
    const killed = procs.splice(0);
    for (const p of killed) p.proc.kill(9);
    // A process is gone only once it has exited, not when the signal is sent: until then
    // it may still create or rename a file in its data dir, and a removal racing it
    // stops half way (Bun's rmSync with force says nothing): a leftover temp dir.
    await Promise.all(killed.map((p) => p.proc.exited));
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  /** `sluice serve` on `configFile`, killed after the test if it still runs. */
  const spawn = async (configFile: string, env: Record<string, string> = {}) => {
    const s = await spawnServer(configFile, env);
    procs.push(s);
    return s;
  };
  return { dirs, procs, spawn };
}

/** Makes a fresh temporary folder per call (`sluice-<prefix>-…`); each is removed after its test. */
export function tempDirs(): (prefix: string) => string {
  const made: string[] = [];
  afterEach(() => {
    for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  return (prefix) => {
    const d = mkdtempSync(join(tmpdir(), `sluice-${prefix}-`));
    made.push(d);
    return d;
  };
}
