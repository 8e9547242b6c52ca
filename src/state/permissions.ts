import { chmodSync, lstatSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";

/** What the start-up check found open to other users, and what it could not close. */
export interface DataDirPermissions {
  /** Entries whose mode was changed (path and old mode, e.g. "data 0755"). */
  fixed: string[];
  /** Entries open to other users that this process may not chmod (not its own, not root). */
  unfixable: string[];
}

const PRIVATE_DIR = 0o700;
const PRIVATE_FILE = 0o600;

/**
 * Makes the data dir private to the server's user: the event log and state.db hold
 * every event and key hash, and a local user (or a function host running as another
 * user) must read none of it. Creates the dir 0700 if missing; walks it and sets
 * dirs to 0700 and files to 0600 where group or others had any access and this
 * process owns the entry (root owns all). Symlinks are left alone.
 */
export function makeDataDirPrivate(dataDir: string): DataDirPermissions {
  mkdirSync(dataDir, { recursive: true, mode: PRIVATE_DIR });
  const result: DataDirPermissions = { fixed: [], unfixable: [] };
  const uid = process.getuid?.();
  const visit = (path: string) => {
    const st = lstatSync(path);
    if (st.isSymbolicLink()) return;
    const dir = st.isDirectory();
    if ((st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o7777).toString(8).padStart(4, "0");
      if (uid === undefined || uid === 0 || st.uid === uid) {
        chmodSync(path, dir ? PRIVATE_DIR : PRIVATE_FILE);
        result.fixed.push(`${path} ${mode}`);
      } else {
        result.unfixable.push(`${path} ${mode} (owner uid ${st.uid})`);
      }
    }
    if (dir) for (const name of readdirSync(path)) visitIfThere(join(path, name));
  };
  // An entry may go between its folder's listing and its visit: a server already running
  // on this data dir (which the lock, taken next, then refuses) renames its temporary
  // files as it goes. Gone is fine; any other failure is not.
  const visitIfThere = (path: string) => {
    try {
      visit(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  };
  visit(dataDir);
  return result;
}

/**
 * From now on this process creates files 0600 and dirs 0700 (umask 077), so new log
 * segments, state.db's WAL and dead letters are private as they are made. For the
 * `serve` process: a umask is process-wide, not something to set under a test runner.
 */
export function createPrivately(): void {
  process.umask(0o077);
}
