/**
 * Messages between the server (parent), the function host process (child) and the
 * host's workers. The parent and the host talk over Bun's IPC channel (JSON); the
 * host and its workers over postMessage. Nothing here carries a write key, the
 * config file or the server's environment: only what user code may see.
 */

/** Exit code of a function host that went over its memory limit. */
export const EXIT_MEMORY = 86;

/** One configured function, as the host loads it. */
export interface FunctionSpec {
  id: string;
  /** Absolute path of the module, as configured (for messages). */
  file: string;
  /** Where the host loads it: the private copy of its folder (else `file`). */
  path?: string;
  /** The config file's timeout; wins over the module's `config.timeoutMs`. */
  timeoutMs?: number;
  /** Content hash of the copy (a reload that changes it starts a new host). */
  hash?: string;
  /** Why it cannot be loaded at all (its files could not be copied, not defined). */
  error?: ErrorInfo;
}

/** What a function's ctx knows about its connection (its env becomes ctx.props). */
export interface ConnectionSpec {
  id: string;
  functions: string[];
  options: Record<string, unknown>;
  env: Record<string, string>;
  source: { id: string; name: string };
  destination: { id: string; type: string };
}

/** How a function file loaded: its effective timeout, or why it failed. */
export interface LoadReport {
  id: string;
  file: string;
  timeoutMs: number;
  error?: ErrorInfo;
}

export interface ErrorInfo {
  name: string;
  message: string;
}

/** Per-call context of a chain run (the rest of ctx comes from the connection). */
export interface CallMeta {
  /** Request headers, credentials removed. */
  headers: Record<string, string>;
  /** Jitsu's source types: a browser key's events are "browser", a server key's "s2s". */
  sourceType: "browser" | "s2s";
  /** Epoch ms. */
  receivedAt: number;
  retries: number;
}

/** One chain run: connection `con`'s functions over `event`. */
export interface RunRequest {
  id: number;
  con: string;
  event: Record<string, unknown>;
  meta: CallMeta;
}

/**
 * A run on its way to a worker: the id and connection for the host's queue and
 * watchdog, the request itself as JSON text. Text crosses to a worker for next to
 * nothing, where Bun's structured clone of an event costs ~10 µs each way.
 */
export interface RunEnvelope {
  id: number;
  con: string;
  /** The pipeline's time limit: a call still queued past it is answered with a timeout. */
  limitMs: number;
  /** JSON of the RunRequest. */
  json: string;
}

export type StoreOp = "get" | "set" | "del" | "ttl";

/** A ctx.store operation of function `fn`. */
export interface StoreRequest {
  kind: "store";
  fn: string;
  op: StoreOp;
  key: string;
  /** JSON text, for set. */
  value?: string;
  /** Seconds, null for no expiry, for set. */
  ttl?: number | null;
}

/** A ctx.fetch call of function `fn`, carried out by the server (fetch-proxy.ts). */
export interface FetchCall {
  kind: "fetch";
  fn: string;
  fetch: FetchRequest;
}

export interface FetchRequest {
  url: string;
  method: string;
  headers: [string, string][];
  /** Base64. */
  body?: string;
  redirect: "follow" | "manual" | "error";
  timeoutMs: number;
}

export interface FetchResponse {
  status: number;
  statusText: string;
  headers: [string, string][];
  /** Base64. */
  body: string;
  /** The final URL (after redirects). */
  url: string;
  redirected: boolean;
}

/** What user code asks the server for, through its worker and host. */
export type ServiceRequest = StoreRequest | FetchCall;

/** The server's answer: a store value, a fetch response, or an error user code sees. */
export interface ServiceReply {
  value?: string | number;
  response?: FetchResponse;
  error?: ErrorInfo;
}

/** What a host's sandbox gave it (the first stage's part, then its own seccomp filter). */
export interface SandboxReport {
  user?: { uid: number; gid: number };
  namespaces: boolean;
  /** 0: no Landlock. */
  landlockAbi: number;
  seccomp: boolean;
  seccompError?: string;
  /** Isolations the OS could not give, said for the start-up warning. */
  missing: string[];
}

export interface HostInit {
  functions: FunctionSpec[];
  connections: ConnectionSpec[];
  workers: number;
  defaultTimeoutMs: number;
  /** The host exits (and is restarted) when its resident memory passes this. */
  maxMemoryBytes: number;
  /** How long a worker may take to load every function file. */
  loadTimeoutMs: number;
  /** The most events a function may return (limits.maxBatchEvents). */
  maxEvents: number;
}

export type ParentMessage =
  | ({ t: "init" } & HostInit)
  | ({ t: "run" } & RunEnvelope)
  | { t: "reply"; id: number; reply: ServiceReply };

export type HostMessage =
  /** The host is up inside its sandbox (the server sends nothing before this). */
  | { t: "hello"; sandbox: SandboxReport }
  | { t: "ready"; functions: LoadReport[] }
  /** `result`: the JSON text of a ChainResult. */
  | ({ t: "done" } & DoneRun)
  /** A function ran past its timeout (or, without functionId, the call waited past its limit). */
  | { t: "timeout"; id: number; functionId?: string; timeoutMs: number }
  /** Sent every second: a host that stops sending is restarted. */
  | { t: "alive" }
  | { t: "failed"; id: number; error: ErrorInfo }
  | { t: "req"; id: number; req: ServiceRequest };

export interface WorkerInit {
  functions: FunctionSpec[];
  connections: ConnectionSpec[];
  defaultTimeoutMs: number;
  maxEvents: number;
  /** Where the worker says which call and function it runs (see progress.ts). */
  progress: SharedArrayBuffer;
  /** Functions not to import (they hung an earlier worker's loading), with the reason. */
  skip: Record<string, ErrorInfo>;
}

/** To a worker: a run as JSON text (RunEnvelope.json), or a control message. */
export type ToWorker =
  | string
  | ({ t: "init" } & WorkerInit)
  | { t: "reply"; id: number; reply: ServiceReply };

/** From a worker: a finished run as text (see encodeDone), or a control message. */
export type FromWorker =
  | string
  | { t: "ready"; functions: LoadReport[] }
  | { t: "req"; id: number; req: ServiceRequest };

/** One function run of a chain, for the server's metrics: id, ms, 1 if it failed. */
export type FunctionRun = [functionId: string, ms: number, failed: 0 | 1];

/** A finished run: the id, each function's run for the metrics, the answer as JSON. */
export interface DoneRun {
  id: number;
  runs: FunctionRun[];
  result: string;
}

/** A finished run as a worker posts it: `<id> <runs JSON>\n<ChainResult JSON>`. */
export function encodeDone(done: DoneRun): string {
  return `${done.id} ${JSON.stringify(done.runs)}\n${done.result}`;
}

export function decodeDone(text: string): DoneRun {
  const space = text.indexOf(" ");
  const nl = text.indexOf("\n", space);
  return {
    id: Number(text.slice(0, space)),
    runs: JSON.parse(text.slice(space + 1, nl)) as FunctionRun[],
    result: text.slice(nl + 1),
  };
}

/** One entry of the exec log (SPEC 7). */
export interface ExecLogEntry {
  eventIndex: number;
  functionId: string;
  ms: number;
  error?: ErrorInfo;
  dropped?: true;
}

export type LogLevel = "debug" | "info" | "warn" | "error";

/** A line a function logged (ctx.log or console). */
export interface LogEntry {
  level: LogLevel;
  functionId: string;
  functionType: "udf";
  message: string;
  args: unknown[];
  timestamp: string;
}

/** What a chain made of one event: the answer of `POST /api/funcs/{conId}`. */
export interface ChainResult {
  events: Record<string, unknown>[];
  execLog: ExecLogEntry[];
  logs: LogEntry[];
}

/** The longest error message kept: a function may throw a string of any size. */
const MAX_MESSAGE_CHARS = 4096;

/**
 * Plain name and message of anything thrown, never throwing itself: user code may
 * throw a Proxy whose traps throw, a null-prototype object (no toString), a revoked
 * Proxy, a symbol or a huge string. Each becomes an ordinary `{name, message}`, so
 * a throw is always an exec-log error at once rather than a call that never answers.
 */
export function errorInfo(err: unknown): ErrorInfo {
  try {
    if (typeof err !== "object" || err === null) {
      return { name: "Error", message: clip(String(err)) };
    }
    const e = err as { name?: unknown; message?: unknown };
    const isError = err instanceof Error;
    if (!isError && !("message" in e)) {
      return { name: "Error", message: clip(`a non-error value was thrown: ${asJson(err)}`) };
    }
    return { name: clip(plain(e.name, "Error")) || "Error", message: clip(plain(e.message, "")) };
  } catch {
    return {
      name: "Error",
      message: "a value was thrown that cannot be read (its traps or getters throw)",
    };
  }
}

function plain(value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value === "string") return value;
  if (typeof value === "object" && value !== null) return describe(value);
  return String(value);
}

/** An object thrown without a message, as JSON if it can be (`{"code":5}`), else its tag. */
function asJson(value: object): string {
  try {
    const json = JSON.stringify(value);
    if (typeof json === "string") return json;
  } catch {}
  return describe(value);
}

/** `[object Object]`-style tag of an object that may have no prototype (no toString). */
function describe(value: object): string {
  try {
    return Object.prototype.toString.call(value);
  } catch {
    return "[object]";
  }
}

function clip(text: string): string {
  return text.length > MAX_MESSAGE_CHARS ? `${text.slice(0, MAX_MESSAGE_CHARS)}…` : text;
}
