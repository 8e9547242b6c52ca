import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import type { Subprocess } from "bun";
import { hostCommand } from "./entrypoints.ts";
import type { HostMessage } from "./protocol.ts";

export interface HostProcessEvents {
  onMessages(batch: HostMessage[]): void;
  onExit(code: number | null, signal: unknown): void;
  /** A line the host wrote to stderr (Bun's own crash reports; user code's console is captured). */
  onOutput(line: string): void;
  /** Run as this user instead of the server's. */
  identity?: HostIdentity;
}

/** A user to run the function host as. */
export interface HostIdentity {
  uid: number;
  gid: number;
}

/**
 * Looks a user up by name or numeric uid in /etc/passwd (no subprocess, no NSS:
 * system users such as `nobody` are there). Throws when there is no such user.
 */
export function resolveHostIdentity(user: string, passwd = "/etc/passwd"): HostIdentity {
  const lines = readFileSync(passwd, "utf8").split("\n");
  for (const line of lines) {
    const [name, , uid, gid] = line.split(":");
    if (name === user || uid === user) return { uid: Number(uid), gid: Number(gid) };
  }
  if (/^\d+$/.test(user)) return { uid: Number(user), gid: Number(user) };
  throw new Error(`functionRuntime.user: no such user ${user}`);
}

/**
 * Starts `sluice __function-host` with an IPC channel. Its environment is PATH alone
 * and its working directory the temp dir, not the server's: user code sees neither
 * the server's variables (keys, tokens) nor its config folder as `.`.
 */
export function spawnHost(events: HostProcessEvents): Subprocess {
  const proc = Bun.spawn(hostCommand(), {
    env: { PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin" },
    cwd: tmpdir(),
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
    serialization: "json",
    ipc: (batch) => events.onMessages(batch as HostMessage[]),
    onExit: (_p, code, signal) => events.onExit(code, signal),
    ...(events.identity ?? {}),
  });
  void forwardLines(proc.stderr as ReadableStream<Uint8Array>, events.onOutput);
  return proc;
}

/** Resident memory of a process from /proc (Linux); undefined where there is none. */
export function residentBytes(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

async function forwardLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void) {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    let nl = buffered.indexOf("\n");
    while (nl >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line) onLine(line.slice(0, 2000));
      nl = buffered.indexOf("\n");
    }
  }
}
