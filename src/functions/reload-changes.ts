import type { FunctionSpec } from "./protocol.ts";

interface Described {
  functions: FunctionSpec[];
  workers: number;
  maxMemoryMb: number;
  defaultTimeoutMs: number;
  allowNetworks: string[];
}

/**
 * What a reload of the function runtime changed, one line each, for the reload's log
 * line: functions added, removed, with new code (content hash) or a new timeout or
 * file; runtime settings; and which connections' hosts were restarted for it.
 */
export function describeReload(
  before: Described,
  after: Described,
  oldHosts: Map<string, { hashes: Map<string, string> }>,
  newHosts: Map<string, { hashes: Map<string, string> }>,
  restarted: string[],
): string[] {
  const out: string[] = [];
  const was = new Map(before.functions.map((f) => [f.id, f]));
  const now = new Map(after.functions.map((f) => [f.id, f]));
  const hashOf = (hosts: Map<string, { hashes: Map<string, string> }>, id: string) => {
    for (const h of hosts.values()) {
      const hash = h.hashes.get(id);
      if (hash !== undefined) return hash;
    }
    return undefined;
  };
  for (const [id, f] of now) {
    const prev = was.get(id);
    if (!prev) {
      out.push(`function ${id} added (${f.file})`);
      continue;
    }
    if (prev.file !== f.file) out.push(`function ${id}: file ${prev.file} -> ${f.file}`);
    if (prev.timeoutMs !== f.timeoutMs) {
      out.push(
        `function ${id}: timeoutMs ${prev.timeoutMs ?? "default"} -> ${f.timeoutMs ?? "default"}`,
      );
    }
    const oldHash = hashOf(oldHosts, id);
    const newHash = hashOf(newHosts, id);
    if (oldHash !== undefined && newHash !== undefined && oldHash !== newHash) {
      out.push(`function ${id}: code changed`);
    }
  }
  for (const id of was.keys()) if (!now.has(id)) out.push(`function ${id} removed`);
  for (const key of ["workers", "maxMemoryMb", "defaultTimeoutMs"] as const) {
    if (before[key] !== after[key]) {
      const name = key === "defaultTimeoutMs" ? "timeoutMs" : key;
      out.push(`functionRuntime.${name}: ${before[key]} -> ${after[key]}`);
    }
  }
  if (before.allowNetworks.join(",") !== after.allowNetworks.join(",")) {
    out.push(
      `functionRuntime.allowNetworks: [${before.allowNetworks}] -> [${after.allowNetworks}]`,
    );
  }
  for (const id of restarted) out.push(`connection ${id}: function host restarted`);
  return out;
}
