import type { Logger } from "pino";
import { hostCommand, isCompiled } from "../entrypoints.ts";
import type { ConnectionSpec, FunctionSpec, SandboxReport } from "../protocol.ts";
import type { HostUser } from "./identity.ts";
import { type SandboxPlan, sandboxPaths, sourcesDir } from "./plan.ts";
import { type StagedFiles, stageFunctionFiles } from "./stage-files.ts";

/** How the server sandboxes its function hosts (decided once at start, see setup.ts). */
export interface SandboxOptions {
  /** The function user (the server is root), undefined to stay the server's user. */
  user?: HostUser;
  /** Start-up lines about the user (created, weaker than it should be). */
  info: string[];
  warnings: string[];
  /** Never copied with a function's folder: the config file and the data dir. */
  exclude: string[];
  /** False where the sandbox cannot be set up at all (no Linux libc): hosts run plain. */
  confine: boolean;
}

/** One connection's host, ready to start: its files, its specs, its command line. */
export interface StagedHost {
  files: StagedFiles;
  functions: FunctionSpec[];
  /** Everything that goes into the host: a different one on reload means a new host. */
  signature: string;
  command: () => string[];
}

/** Copies connection `c`'s function files for its host and plans its sandbox. */
export function stageHost(
  c: ConnectionSpec,
  opts: {
    functions: FunctionSpec[];
    sandbox: SandboxOptions;
    workers: number;
    maxMemoryMb: number;
    defaultTimeoutMs: number;
    maxEvents: number;
    allowNetworks: string[];
  },
): StagedHost {
  const { sandbox } = opts;
  const byId = new Map(opts.functions.map((f) => [f.id, f]));
  const chain = [...new Set(c.functions)];
  const specs = chain.map((id) => byId.get(id) ?? { id, file: "" });
  const files = stageFunctionFiles(
    specs.filter((s) => s.file !== ""),
    { exclude: sandbox.exclude, gid: sandbox.user?.gid },
  );
  const staged = new Map(files.functions.map((f) => [f.id, f]));
  const functions: FunctionSpec[] = specs.map((spec) => {
    const copy = staged.get(spec.id);
    if (!copy) {
      return {
        id: spec.id,
        file: spec.file,
        timeoutMs: spec.timeoutMs,
        error: { name: "Error", message: `function ${spec.id} is not defined in the config` },
      };
    }
    return {
      id: spec.id,
      file: spec.file,
      path: copy.path,
      timeoutMs: spec.timeoutMs,
      hash: copy.hash,
      ...(copy.error ? { error: copy.error } : {}),
    };
  });
  const plan: SandboxPlan = {
    user: sandbox.user ? { uid: sandbox.user.uid, gid: sandbox.user.gid } : undefined,
    // New namespaces need root; without them seccomp alone keeps the host off the network.
    namespaces: process.getuid?.() === 0,
    landlock: true,
    paths: sandboxPaths({ functionsDir: files.dir, sourcesDir: sourcesDir(isCompiled()) }),
    exec: hostCommand(),
  };
  const signature = JSON.stringify({
    functions: functions.map((f) => [f.id, f.file, f.timeoutMs, f.hash, f.error]),
    c,
    workers: opts.workers,
    maxMemoryMb: opts.maxMemoryMb,
    defaultTimeoutMs: opts.defaultTimeoutMs,
    maxEvents: opts.maxEvents,
    allowNetworks: opts.allowNetworks,
    user: sandbox.user,
  });
  const unconfined: SandboxReport = {
    namespaces: false,
    landlockAbi: 0,
    seccomp: false,
    missing: ["the whole sandbox (no Linux C library to set it up with)"],
  };
  return {
    files,
    functions,
    signature,
    command: () =>
      sandbox.confine
        ? [...hostCommand(), "confine", JSON.stringify(plan)]
        : [...hostCommand(), JSON.stringify(unconfined)],
  };
}

/**
 * Start-up warnings about isolation the OS could not give (SPEC 7), each said once
 * however many hosts report it.
 */
export class SandboxWarnings {
  private readonly said = new Set<string>();

  constructor(private readonly logger: Logger) {}

  warn(line: string): void {
    if (this.said.has(line)) return;
    this.said.add(line);
    this.logger.warn(line);
  }

  /** What a host could not get, as warnings naming it and what it means. */
  report(r: SandboxReport, opts: SandboxOptions): void {
    for (const item of r.missing)
      this.warn(`function sandbox: ${item} is not available; ${consequence(item)}`);
    if (opts.confine && !r.seccomp) {
      this.warn(
        `function sandbox: no seccomp filter (${r.seccompError ?? "unknown reason"}); functions can ` +
          "spawn processes, open sockets and signal processes of their own user",
      );
    }
    if (opts.user && r.user?.uid !== opts.user.uid) {
      this.warn(
        `function sandbox: the host runs as uid ${r.user?.uid ?? "?"}, not ${opts.user.name}`,
      );
    }
  }
}

function consequence(item: string): string {
  if (item.startsWith("Landlock (file")) {
    return "functions can read every file their user can (the config and data dir are protected only by file permissions)";
  }
  if (item.startsWith("Landlock TCP")) return "seccomp alone keeps functions off the network";
  if (item.startsWith("Landlock signal"))
    return "seccomp alone keeps functions from signalling other processes";
  if (item.startsWith("network namespace")) return "seccomp alone keeps functions off the network";
  return "functions are less isolated than they should be";
}
