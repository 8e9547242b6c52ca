import { createHash } from "node:crypto";
import {
  chmodSync,
  chownSync,
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative, sep } from "node:path";
import type { ErrorInfo } from "../protocol.ts";
import { codeHash } from "./code-hash.ts";
import { isInside } from "./paths.ts";

/**
 * A connection's function files, copied into a private folder for its function host
 * (SPEC 7: user code reads no file outside its own function's folder). The host is
 * confined to this copy, so it needs no access to the operator's folders (a 0700
 * config dir stays 0700), cannot change the originals, and a reload (SIGHUP) copies
 * again: the code that runs is the code on disk at the last start or reload.
 */
export interface StagedFunction {
  id: string;
  /** The configured file (for messages). */
  file: string;
  /** Where the host loads it from. */
  path: string;
  /** What was copied: a change means the function must be loaded again. */
  hash: string;
  error?: ErrorInfo;
}

export interface StagedFiles {
  /** The private folder (the host's working dir). */
  dir: string;
  functions: StagedFunction[];
  /** Says an error text the way the user knows the files: copy paths back to the originals. */
  unmap(text: string): string;
  remove(): void;
}

/** Private folders are named `sluice-fn-<server pid>-<random>`. */
const PREFIX = "sluice-fn-";

/**
 * Removes the private folders of servers that are gone (killed with -9, they had no
 * chance to): a folder whose pid runs no process any more is stale.
 */
function removeStaleCopies(parent: string): void {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^sluice-fn-(\d+)-/.exec(name);
    if (!m || Number(m[1]) === process.pid || alive(Number(m[1]))) continue;
    try {
      removeCopy(join(parent, name));
    } catch {
      // Another user's (a server run as root before): not ours to remove.
    }
  }
}

/**
 * Deletes a private copy. Its dirs are read-only (0500 when not root), which would
 * keep even their owner from deleting what is in them: they are opened up first.
 */
function removeCopy(dir: string): void {
  const open = (path: string) => {
    if (!lstatSync(path).isDirectory()) return;
    chmodSync(path, 0o700);
    for (const name of readdirSync(path)) open(join(path, name));
  };
  try {
    open(dir);
  } catch {
    // Gone already, or not ours: rmSync says which.
  }
  rmSync(dir, { recursive: true, force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Most a function's folder may hold; more is a load error (a function does not need a disk). */
export const FOLDER_LIMITS = { files: 10_000, bytes: 64 * 1024 * 1024 };

export interface StageOptions {
  /** Never copied, nor any folder holding them: the config file and the data dir. */
  exclude: string[];
  /** Owner group of the copy (the function user's), when the server is root. */
  gid?: number;
  /** Where the private folder is made (default: the temp dir). */
  parent?: string;
}

/**
 * Copies each function's folder (the folder of its file, with what it imports from
 * there) into one new private folder. A folder that holds the config file or the data
 * dir is not copied: only the function's own file is. Symlinks are followed only to
 * places inside the folder; files are opened without following links and checked
 * after opening, so a link swapped in meanwhile cannot make the copy read elsewhere.
 */
export function stageFunctionFiles(
  specs: { id: string; file: string }[],
  opts: StageOptions,
): StagedFiles {
  const parent = opts.parent ?? tmpdir();
  removeStaleCopies(parent);
  const dir = mkdtempSync(join(parent, `${PREFIX}${process.pid}-`));
  const mapped: [copy: string, original: string][] = [];
  const functions = specs.map((spec): StagedFunction => {
    const target = join(dir, spec.id);
    try {
      const source = realpathSync(dirname(spec.file));
      const entry = basename(spec.file);
      const path = join(target, entry);
      const copier = new FolderCopy(source, target);
      mapped.push([`${target}${sep}`, `${dirname(spec.file)}${sep}`]);
      if (!opts.exclude.some((x) => isInside(x, source))) {
        copier.copyDir(source, target);
        return { id: spec.id, file: spec.file, path, hash: codeHash(path, target) };
      }
      // Its folder holds the config or the data dir: the function gets its own file only.
      if (opts.exclude.includes(realpathSync(spec.file))) {
        throw new Error(`${spec.file} is sluice's own config or data, not a function`);
      }
      copier.copyFile(join(source, entry), path);
      return { id: spec.id, file: spec.file, path, hash: copier.digest() };
    } catch (err) {
      return {
        id: spec.id,
        file: spec.file,
        path: join(target, basename(spec.file)),
        hash: "",
        error: { name: "Error", message: (err as Error).message },
      };
    }
  });
  makeReadOnly(dir, opts.gid);
  return {
    dir,
    functions,
    unmap(text) {
      let out = text;
      for (const [copy, original] of mapped) out = out.split(copy).join(original);
      return out;
    },
    remove: () => removeCopy(dir),
  };
}

class FolderCopy {
  private files = 0;
  private bytes = 0;
  private readonly hash = createHash("sha256");

  constructor(
    private readonly root: string,
    private readonly target: string,
  ) {}

  /** Hash of everything copied (for a function whose folder is its file alone). */
  digest(): string {
    return this.hash.digest("hex");
  }

  copyDir(from: string, to: string): void {
    mkdirSync(to, { recursive: true });
    const entries = readdirSync(from, { withFileTypes: true }).sort((a, b) =>
      a.name < b.name ? -1 : 1,
    );
    for (const e of entries) {
      const src = join(from, e.name);
      const dst = join(to, e.name);
      if (e.isDirectory()) this.copyDir(src, dst);
      else if (e.isFile()) this.copyFile(src, dst);
      else if (e.isSymbolicLink()) this.copyLink(src, dst);
    }
  }

  copyFile(from: string, to: string): void {
    const content = this.readInside(from);
    this.files += 1;
    this.bytes += content.length;
    if (this.files > FOLDER_LIMITS.files || this.bytes > FOLDER_LIMITS.bytes) {
      throw new Error(
        `${this.root} holds more than ${FOLDER_LIMITS.files} files or ${FOLDER_LIMITS.bytes / 1048576} MB: ` +
          "put the function in a folder of its own",
      );
    }
    mkdirSync(dirname(to), { recursive: true });
    writeFileSync(to, content);
    this.hash.update(`${relative(this.target, to)}\0${content.length}\0`);
    this.hash.update(content);
  }

  /** A link to a place inside the folder becomes the same link in the copy; others are left out. */
  private copyLink(from: string, to: string): void {
    let real: string;
    try {
      real = realpathSync(from);
    } catch {
      return;
    }
    if (!isInside(real, this.root)) return;
    const mappedTarget = join(this.target, relative(this.root, real));
    symlinkSync(relative(dirname(to), mappedTarget), to);
    this.hash.update(`${relative(this.target, to)}\0->${relative(this.target, mappedTarget)}\0`);
  }

  /** Reads a regular file that is, once opened, really inside the folder. */
  private readInside(path: string): Buffer {
    const fd = openNoFollow(path);
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new Error(`${path} is not a regular file`);
      const real = readlinkSync(`/proc/self/fd/${fd}`);
      if (!isInside(real, this.root))
        throw new Error(`${path} leads outside its function's folder`);
      const buf = Buffer.alloc(st.size);
      let at = 0;
      while (at < st.size) {
        const n = readSync(fd, buf, at, st.size - at, at);
        if (n === 0) break;
        at += n;
      }
      return buf.subarray(0, at);
    } finally {
      closeSync(fd);
    }
  }
}

function openNoFollow(path: string): number {
  return openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
}

/**
 * The copy is readable by its owner (root or the server's user) and, when given, the
 * function user's group; nobody may write to it (Landlock forbids writes too).
 */
function makeReadOnly(dir: string, gid: number | undefined): void {
  const visit = (path: string, isDir: boolean) => {
    if (isDir)
      for (const e of readdirSync(path, { withFileTypes: true })) {
        if (!e.isSymbolicLink()) visit(join(path, e.name), e.isDirectory());
      }
    if (gid !== undefined) chownSync(path, 0, gid);
    chmodSync(
      path,
      isDir ? (gid !== undefined ? 0o550 : 0o500) : gid !== undefined ? 0o440 : 0o400,
    );
  };
  visit(dir, true);
}
