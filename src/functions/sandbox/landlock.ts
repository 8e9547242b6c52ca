import { ptr } from "bun:ffi";
import { statSync } from "node:fs";
import type { Libc } from "./libc.ts";

/**
 * Landlock (Linux 5.13+): the function host may read only the paths it is given,
 * execute only the runtime, write nowhere, open no TCP connection and signal no
 * process outside itself. Unprivileged; applies to the calling thread and everything
 * it execs, which is why the host is confined by its first stage and then re-executed
 * (confine.ts): every thread of the real host is then born inside the sandbox.
 */

// The same numbers on every architecture.
const SYS_CREATE_RULESET = 444;
const SYS_ADD_RULE = 445;
const SYS_RESTRICT_SELF = 446;
const CREATE_RULESET_VERSION = 1;
const RULE_PATH_BENEATH = 1;

const FS_EXECUTE = 1n << 0n;
const FS_READ_FILE = 1n << 2n;
const FS_READ_DIR = 1n << 3n;
/** Access rights each ABI version knows (bits 0..12, then REFER, TRUNCATE, IOCTL_DEV). */
const FS_RIGHTS_BY_ABI = [
  0n,
  (1n << 13n) - 1n,
  (1n << 14n) - 1n,
  (1n << 15n) - 1n,
  (1n << 15n) - 1n,
];
const FS_ALL_ABI5 = (1n << 16n) - 1n;
const NET_BIND_CONNECT_TCP = 3n;
const SCOPE_ABSTRACT_UNIX_AND_SIGNAL = 3n;

/** What Landlock on this kernel can do, by its ABI version (0: none). */
export function landlockAbi(c: Libc): number {
  const abi = c.syscall(SYS_CREATE_RULESET, 0, 0, CREATE_RULESET_VERSION);
  return Math.max(abi, 0);
}

/** What the sandbox may do with a path. */
export type PathAccess = "read" | "execute";

export interface LandlockResult {
  abi: number;
  /** What this kernel's Landlock could not restrict (for the start warning). */
  missing: string[];
}

/** A ruleset made and waiting to be applied (see restrictSelf). */
export interface Ruleset extends LandlockResult {
  fd: number;
}

/**
 * Makes a ruleset allowing `paths`: read (files and dirs beneath) or execute (read +
 * run); paths that do not exist are skipped. Made before the process gives up root,
 * since the rules open their paths, which the function user may not reach. Undefined
 * when the kernel has no Landlock; throws when it has one and the ruleset fails.
 */
export function makeRuleset(
  c: Libc,
  paths: [string, PathAccess][],
): Ruleset | { abi: 0; missing: string[] } {
  const abi = landlockAbi(c);
  if (abi === 0) return { abi: 0, missing: ["Landlock (file access)"] };
  const fsRights = abi >= 5 ? FS_ALL_ABI5 : FS_RIGHTS_BY_ABI[abi]!;
  const missing: string[] = [];
  if (abi < 4) missing.push("Landlock TCP rules (ABI 4)");
  if (abi < 6) missing.push("Landlock signal scoping (ABI 6)");
  // struct landlock_ruleset_attr { u64 handled_access_fs, handled_access_net, scoped }
  const attr = new BigUint64Array([
    fsRights,
    abi >= 4 ? NET_BIND_CONNECT_TCP : 0n,
    abi >= 6 ? SCOPE_ABSTRACT_UNIX_AND_SIGNAL : 0n,
  ]);
  const attrSize = abi >= 6 ? 24 : abi >= 4 ? 16 : 8;
  const fd = c.syscall(SYS_CREATE_RULESET, ptr(attr), attrSize, 0);
  if (fd < 0) throw new Error(`landlock_create_ruleset failed (errno ${c.errno()})`);
  try {
    for (const [path, access] of paths) addRule(c, fd, path, access);
  } catch (err) {
    c.close(fd);
    throw err;
  }
  return { fd, abi, missing };
}

/**
 * Confines the calling thread (and what it execs) to the ruleset. Needs
 * no_new_privs, which it sets (inherited, never unset). Throws on failure.
 */
export function restrictSelf(c: Libc, ruleset: Ruleset): void {
  try {
    if (c.prctl(38 /* PR_SET_NO_NEW_PRIVS */, 1) !== 0) {
      throw new Error(`prctl(PR_SET_NO_NEW_PRIVS) failed (errno ${c.errno()})`);
    }
    if (c.syscall(SYS_RESTRICT_SELF, ruleset.fd, 0) !== 0) {
      throw new Error(`landlock_restrict_self failed (errno ${c.errno()})`);
    }
  } finally {
    c.close(ruleset.fd);
  }
}

function addRule(c: Libc, ruleset: number, path: string, access: PathAccess): void {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    return;
  }
  // A rule on a file may name only file rights.
  let rights = FS_READ_FILE | (access === "execute" ? FS_EXECUTE : 0n);
  if (isDir) rights |= FS_READ_DIR;
  const O_PATH = 0o10000000;
  const O_CLOEXEC = 0o2000000;
  const fd = c.open(path, O_PATH | O_CLOEXEC);
  if (fd < 0) return;
  try {
    // struct landlock_path_beneath_attr { u64 allowed_access; s32 parent_fd; } (packed)
    const rule = Buffer.alloc(12);
    rule.writeBigUInt64LE(rights, 0);
    rule.writeInt32LE(fd, 8);
    if (c.syscall(SYS_ADD_RULE, ruleset, RULE_PATH_BENEATH, ptr(rule), 0) !== 0) {
      throw new Error(`landlock_add_rule for ${path} failed (errno ${c.errno()})`);
    }
  } finally {
    c.close(fd);
  }
}
