import type {
  ErrorInfo,
  FunctionRun,
  HostMessage,
  LoadReport,
  SandboxReport,
  ServiceRequest,
} from "./protocol.ts";

/**
 * A message from a function host, checked field by field: the host runs user code,
 * which can write to the channel itself (frames.ts), so a message may be anything.
 * Undefined for what is not a well-formed message; the server never trusts more.
 */
export function checkHostMessage(raw: unknown): HostMessage | undefined {
  if (!isObject(raw)) return undefined;
  switch (raw.t) {
    case "alive":
      return { t: "alive" };
    case "hello":
      return isObject(raw.sandbox)
        ? { t: "hello", sandbox: sandboxReport(raw.sandbox) }
        : undefined;
    case "ready":
      return Array.isArray(raw.functions) && raw.functions.every(isLoadReport)
        ? { t: "ready", functions: raw.functions as LoadReport[] }
        : undefined;
    case "done":
      return isId(raw.id) &&
        typeof raw.result === "string" &&
        Array.isArray(raw.runs) &&
        raw.runs.every(isRun)
        ? { t: "done", id: raw.id, result: raw.result, runs: raw.runs as FunctionRun[] }
        : undefined;
    case "timeout":
      return isId(raw.id) &&
        isCount(raw.timeoutMs) &&
        (raw.functionId === undefined || typeof raw.functionId === "string")
        ? {
            t: "timeout",
            id: raw.id,
            timeoutMs: raw.timeoutMs,
            functionId: raw.functionId as string | undefined,
          }
        : undefined;
    case "failed":
      return isId(raw.id) && isError(raw.error)
        ? { t: "failed", id: raw.id, error: raw.error }
        : undefined;
    case "req":
      return isId(raw.id) && isRequest(raw.req)
        ? { t: "req", id: raw.id, req: raw.req }
        : undefined;
    default:
      return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isId(v: unknown): v is number {
  return Number.isSafeInteger(v);
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v) && v >= 0;
}

function isError(v: unknown): v is ErrorInfo {
  return isObject(v) && typeof v.name === "string" && typeof v.message === "string";
}

function isLoadReport(v: unknown): boolean {
  return (
    isObject(v) &&
    typeof v.id === "string" &&
    typeof v.file === "string" &&
    isCount(v.timeoutMs) &&
    (v.error === undefined || isError(v.error))
  );
}

function isRun(v: unknown): boolean {
  return (
    Array.isArray(v) && typeof v[0] === "string" && isCount(v[1]) && (v[2] === 0 || v[2] === 1)
  );
}

function isRequest(v: unknown): v is ServiceRequest {
  if (!isObject(v) || typeof v.fn !== "string") return false;
  if (v.kind === "store") {
    return (
      ["get", "set", "del", "ttl"].includes(v.op as string) &&
      typeof v.key === "string" &&
      (v.value === undefined || typeof v.value === "string") &&
      (v.ttl === undefined || v.ttl === null || (typeof v.ttl === "number" && v.ttl > 0))
    );
  }
  if (v.kind === "fetch" && isObject(v.fetch)) {
    const f = v.fetch;
    return (
      typeof f.url === "string" &&
      typeof f.method === "string" &&
      Array.isArray(f.headers) &&
      f.headers.every(
        (h) => Array.isArray(h) && h.length === 2 && h.every((x) => typeof x === "string"),
      ) &&
      (f.body === undefined || typeof f.body === "string") &&
      ["follow", "manual", "error"].includes(f.redirect as string) &&
      isCount(f.timeoutMs)
    );
  }
  return false;
}

function sandboxReport(v: Record<string, unknown>): SandboxReport {
  const user =
    isObject(v.user) && isCount(v.user.uid) && isCount(v.user.gid)
      ? { uid: v.user.uid, gid: v.user.gid }
      : undefined;
  return {
    user,
    namespaces: v.namespaces === true,
    landlockAbi: isCount(v.landlockAbi) ? v.landlockAbi : 0,
    seccomp: v.seccomp === true,
    seccompError: typeof v.seccompError === "string" ? v.seccompError.slice(0, 500) : undefined,
    missing: Array.isArray(v.missing)
      ? v.missing.filter((x) => typeof x === "string").map((x) => x.slice(0, 500))
      : [],
  };
}
