import { existsSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import type { PathAccess } from "./landlock.ts";

/**
 * What the first stage of a function host does before it becomes the host (see
 * confine.ts), decided by the server: whom to run as, which paths to allow, whether
 * to leave the network. It travels on the command line (nothing secret in it).
 */
export interface SandboxPlan {
  /** Switch to this user and group (the server is root). */
  user?: { uid: number; gid: number };
  /** Enter new network, IPC and UTS namespaces (root only): no network interface at all. */
  namespaces: boolean;
  /** Apply Landlock with these paths (and the process's own /proc entry). */
  landlock: boolean;
  paths: [string, PathAccess][];
  /** The command line of the host itself (stage two). */
  exec: string[];
}

/** What the first stage managed; handed on to the host, which reports it with its own. */
export interface StageOneReport {
  user?: { uid: number; gid: number };
  namespaces: boolean;
  landlockAbi: number;
  missing: string[];
}

/** System files the Bun runtime reads as it starts (found by tracing it under Landlock). */
const RUNTIME_READS = [
  "/etc/ld.so.cache",
  "/etc/localtime",
  "/usr/share/zoneinfo",
  "/proc/stat",
  "/proc/meminfo",
  "/proc/sys/vm/overcommit_memory",
  "/proc/sys/vm/mmap_min_addr",
  "/sys/kernel/mm/transparent_hugepage",
  "/sys/devices/system/cpu",
  "/sys/fs/cgroup",
  "/dev/null",
  "/dev/urandom",
];

/** Shared libraries (the runtime links libc and libstdc++). */
const LIBRARY_DIRS = ["/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib"];

/**
 * The paths a host may use: the runtime (executable, libraries, the few system files
 * it reads), its own sources when not compiled into the binary, and its function
 * files (the private copy). Nothing else: not the config, the data dir, /etc, /home.
 */
export function sandboxPaths(opts: {
  functionsDir: string;
  sourcesDir?: string;
}): [string, PathAccess][] {
  const paths: [string, PathAccess][] = [[realpathSync(process.execPath), "execute"]];
  for (const dir of LIBRARY_DIRS) if (existsSync(dir)) paths.push([dir, "execute"]);
  for (const file of RUNTIME_READS) if (existsSync(file)) paths.push([file, "read"]);
  if (opts.sourcesDir) paths.push([opts.sourcesDir, "read"]);
  paths.push([opts.functionsDir, "read"]);
  return paths;
}

/** The sluice sources a development host reads (src/), undefined in the compiled binary. */
export function sourcesDir(compiled: boolean): string | undefined {
  return compiled ? undefined : join(dirname(import.meta.dir), "..");
}
