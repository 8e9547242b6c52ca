/**
 * Worker entry of the function host: loads every function module, then runs chains,
 * one at a time, for the host (host.ts). User code runs only here. The worker knows
 * the connections' options and env (ctx.props) and nothing else of the server.
 *
 * A separate entry point: `bun build --compile` must list it (see package.json).
 */
import { type ChainOutput, type LoadedFunction, runChain, type UserFunction } from "./chain.ts";
import { buildContext, deepFreeze, type FunctionStoreApi, storeApi } from "./ctx.ts";
import { proxiedFetch } from "./fetch.ts";
import { TimerLeftovers } from "./leftovers.ts";
import { captureConsole, LogCapture } from "./logs.ts";
import { LOAD_CALL_ID, Progress } from "./progress.ts";
import {
  type ConnectionSpec,
  type ErrorInfo,
  encodeDone,
  errorInfo,
  type FromWorker,
  type FunctionRun,
  type FunctionSpec,
  type RunRequest,
  type ServiceReply,
  type ServiceRequest,
  type ToWorker,
  type WorkerInit,
} from "./protocol.ts";
import { RetryError } from "./sdk.ts";

declare const self: Worker;

// RetryError is a global, as in Jitsu, and the export of the `sluice/functions` module.
(globalThis as Record<string, unknown>).RetryError = RetryError;
Bun.plugin({
  name: "sluice-functions",
  setup(build) {
    build.module("sluice/functions", () => ({ exports: { RetryError }, loader: "object" }));
  },
});

const functions = new Map<string, LoadedFunction>();
const connections = new Map<string, ConnectionSpec>();
let progress: Progress;
/** A function may return at most this many events (limits.maxBatchEvents). */
let maxEvents = Number.POSITIVE_INFINITY;
let active: { capture: LogCapture; functionId: string } | null = null;
/** Requests to the server (ctx.store, ctx.fetch) waiting for their reply. */
const requests = new Map<number, { resolve: (v: ServiceReply) => void }>();
let requestSeq = 0;

/** Sends a request for user code and resolves with the server's reply. */
function request(req: ServiceRequest): Promise<ServiceReply> {
  return new Promise((resolve) => {
    const id = ++requestSeq;
    requests.set(id, { resolve });
    post({ t: "req", id, req });
  });
}

const post = (message: FromWorker) => self.postMessage(message);

captureConsole(() => active);
const leftovers = new TimerLeftovers();
// process.exit would end this worker and fail every call it holds: make it a plain throw,
// recorded in the exec log like any other.
process.exit = (code?: number | string | null) => {
  throw new Error(`process.exit(${code ?? ""}) is not allowed in a function`);
};
// A timer or promise a function left behind must not take the worker down.
self.addEventListener("error", (e) => e.preventDefault());
process.on("unhandledRejection", () => {});

const stores = new Map<string, FunctionStoreApi>();

/** ctx.store of one function of one connection: its own keys (SPEC 7 quotas are per function). */
function storeFor(con: string, fn: string): FunctionStoreApi {
  const key = `${con}\u0000${fn}`;
  let api = stores.get(key);
  if (!api) {
    api = storeApi(async (op, k, value, ttl) => {
      const reply = await request({ kind: "store", fn, op, key: k, value, ttl });
      if (reply.error) throw replyError(reply.error);
      return reply.value;
    });
    stores.set(key, api);
  }
  return api;
}

/** ctx.fetch of one function: the server performs it (the host has no network). */
function fetchFor(fn: string, timeoutMs: number) {
  return proxiedFetch(timeoutMs, async (fetch) => {
    const reply = await request({ kind: "fetch", fn, fetch });
    if (reply.error || !reply.response)
      throw replyError(reply.error ?? { name: "TypeError", message: "no response" });
    return reply.response;
  });
}

function replyError(e: ErrorInfo): Error {
  return Object.assign(new Error(e.message), { name: e.name });
}

self.onmessage = (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  if (typeof m === "string") void run(JSON.parse(m) as RunRequest);
  else if (m.t === "reply") settle(m.id, m.reply);
  else void init(m);
};

async function init(m: WorkerInit) {
  progress = new Progress(m.progress);
  maxEvents = m.maxEvents;
  for (const c of m.connections) connections.set(c.id, deepFreeze(c));
  const reports = [];
  for (const [i, spec] of m.functions.entries()) {
    progress.enter(LOAD_CALL_ID, i);
    const skipped = spec.error ?? m.skip?.[spec.id];
    const fn: LoadedFunction = skipped
      ? { id: spec.id, timeoutMs: spec.timeoutMs ?? m.defaultTimeoutMs, error: skipped }
      : await load(spec, m.defaultTimeoutMs);
    functions.set(spec.id, fn);
    reports.push({ id: spec.id, file: spec.file, timeoutMs: fn.timeoutMs, error: fn.error });
  }
  leftovers.start();
  post({ t: "ready", functions: reports });
}

async function load(spec: FunctionSpec, defaultTimeoutMs: number): Promise<LoadedFunction> {
  let mod: { default?: unknown; config?: { timeoutMs?: unknown } };
  try {
    mod = await import(spec.path ?? spec.file);
  } catch (err) {
    return { id: spec.id, timeoutMs: spec.timeoutMs ?? defaultTimeoutMs, error: loadError(err) };
  }
  const own = mod.config?.timeoutMs;
  const timeoutMs =
    spec.timeoutMs ??
    (typeof own === "number" && Number.isFinite(own) && own > 0 ? own : defaultTimeoutMs);
  if (typeof mod.default !== "function") {
    return {
      id: spec.id,
      timeoutMs,
      error: { name: "TypeError", message: "the module has no default export function" },
    };
  }
  return { id: spec.id, timeoutMs, run: mod.default as UserFunction };
}

async function run(m: RunRequest) {
  const capture = new LogCapture();
  const connection = connections.get(m.con);
  let output: ChainOutput = { events: [m.event], execLog: [] };
  if (connection) {
    const steps = connection.functions.map(
      (id): LoadedFunction =>
        functions.get(id) ?? {
          id,
          timeoutMs: 0,
          error: { name: "Error", message: `function ${id} is not defined` },
        },
    );
    try {
      output = await runChain(
        steps,
        m.event,
        (fn) =>
          buildContext({
            connection,
            meta: m.meta,
            capture,
            functionId: fn.id,
            timeoutMs: fn.timeoutMs,
            store: storeFor(connection.id, fn.id),
            fetch: fetchFor(fn.id, fn.timeoutMs),
          }),
        (i, fn) => {
          progress.enter(m.id, i);
          active = { capture, functionId: fn.id };
        },
        maxEvents,
      );
    } catch (err) {
      // A bug of the runtime rather than user code: still an answer, never a hang.
      const functionId = active?.functionId ?? connection.functions[0] ?? "";
      output = {
        events: [m.event],
        execLog: [{ eventIndex: 0, functionId, ms: 0, error: errorInfo(err) }],
      };
    } finally {
      active = null;
      leftovers.clear();
    }
  }
  const runs = output.execLog.map((e): FunctionRun => [e.functionId, e.ms, e.error ? 1 : 0]);
  post(encodeDone({ id: m.id, runs, result: serialize(output, capture) }));
}

/**
 * The most characters a chain's answer may have as JSON (it crosses to the server in a
 * message of at most MAX_HOST_LINE_BYTES, escaped once more on the way).
 */
const MAX_RESULT_CHARS = 8 * 1024 * 1024;

/**
 * The answer as JSON text. Events JSON cannot carry (BigInt, cycles, traps that throw)
 * or an answer over MAX_RESULT_CHARS are an error of the last function, and the
 * answer then holds no events.
 */
function serialize(output: ChainOutput, capture: LogCapture): string {
  const logs = capture.finish();
  let problem: string;
  try {
    const json = JSON.stringify({ events: output.events, execLog: output.execLog, logs });
    if (json.length <= MAX_RESULT_CHARS) return json;
    problem = `the answer is ${json.length} characters as JSON; at most ${MAX_RESULT_CHARS} are allowed`;
  } catch (err) {
    problem = `events are not JSON: ${errorInfo(err).message}`;
  }
  const last = output.execLog[output.execLog.length - 1];
  if (last) {
    last.error = { name: "TypeError", message: problem };
    delete last.dropped;
  }
  try {
    return JSON.stringify({ events: [], execLog: output.execLog, logs });
  } catch {
    return JSON.stringify({ events: [], execLog: output.execLog, logs: [] });
  }
}

function settle(id: number, reply: ServiceReply) {
  const call = requests.get(id);
  if (!call) return;
  requests.delete(id);
  call.resolve(reply);
}

/** Bun's build and resolve errors, said the way a user reads them: where, and what. */
function loadError(err: unknown): ErrorInfo {
  const info = errorInfo(err);
  const at = (err as { position?: { line?: number; column?: number } } | null)?.position;
  if (info.name === "BuildMessage") {
    const where = at?.line ? ` (line ${at.line}, column ${at.column ?? 0})` : "";
    return { name: "SyntaxError", message: `${info.message}${where}` };
  }
  if (info.name === "ResolveMessage") {
    // "… imported from <this worker's path>" says nothing about the user's file.
    return { name: "Error", message: info.message.replace(/ imported from .*$/, "") };
  }
  return info;
}
