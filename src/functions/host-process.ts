import type { Subprocess } from "bun";
import { frame, readLines } from "./frames.ts";

export interface HostProcessEvents {
  /** A batch the host wrote (not checked: the host runs user code, see host-client.ts). */
  onBatch(batch: unknown): void;
  onExit(code: number | null, signal: unknown): void;
  /** A line the host wrote to stderr (Bun's own crash reports; user code's console is captured). */
  onOutput(line: string): void;
  /** The host wrote what is no message (too long, not JSON): it must go. */
  onBroken(reason: string): void;
}

/** The longest line a host may write (a chain's answer is capped well below, see worker.ts). */
export const MAX_HOST_LINE_BYTES = 32 * 1024 * 1024;

/** A running host and the way to write to it. */
export interface HostProcess {
  proc: Subprocess<"pipe", "pipe", "pipe">;
  /** Writes one batch; false when the host is gone. */
  send(batch: unknown[]): boolean;
}

/**
 * Starts a function host (`command`, the first stage of its sandbox) in working dir
 * `cwd` (the private copy of its function files) with an empty environment: user
 * code sees none of the server's variables (keys, tokens), nor its config folder as
 * `.`. Messages go over its stdin and stdout (frames.ts), its stderr to the log.
 */
export function spawnHost(command: string[], cwd: string, events: HostProcessEvents): HostProcess {
  const proc = Bun.spawn(command, {
    env: {},
    cwd,
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
    onExit: (_p, code, signal) => events.onExit(code, signal),
  });
  void readLines(proc.stdout, MAX_HOST_LINE_BYTES, events.onBatch, events.onBroken).catch((err) =>
    events.onBroken(`its output could not be read (${(err as Error).message})`),
  );
  void forwardLines(proc.stderr, events.onOutput);
  return {
    proc,
    send(batch) {
      try {
        proc.stdin.write(frame(batch));
        proc.stdin.flush();
        return true;
      } catch {
        return false;
      }
    },
  };
}

/** Most stderr a host may have logged per window; more is counted and said once. */
const OUTPUT_LINES_PER_WINDOW = 50;
const OUTPUT_WINDOW_MS = 10_000;
const OUTPUT_LINE_CHARS = 2000;

/**
 * Forwards a host's stderr line by line, each cut to 2000 characters and at most 50
 * lines per 10 s (user code can write to stderr in a loop: it must not fill the
 * server's log or memory).
 */
async function forwardLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void) {
  const decoder = new TextDecoder();
  let buffered = "";
  let windowStart = 0;
  let inWindow = 0;
  let dropped = 0;
  const emit = (line: string) => {
    const now = Date.now();
    if (now - windowStart > OUTPUT_WINDOW_MS) {
      if (dropped > 0) onLine(`(${dropped} more lines of host output dropped)`);
      windowStart = now;
      inWindow = 0;
      dropped = 0;
    }
    if (++inWindow > OUTPUT_LINES_PER_WINDOW) dropped++;
    else onLine(line.slice(0, OUTPUT_LINE_CHARS));
  };
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    let nl = buffered.indexOf("\n");
    while (nl >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line) emit(line);
      nl = buffered.indexOf("\n");
    }
    // A line without end is cut, not held.
    if (buffered.length > OUTPUT_LINE_CHARS) {
      emit(buffered.trim());
      buffered = "";
    }
  }
}
