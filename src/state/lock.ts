import { Database } from "bun:sqlite";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Another process owns the data dir. */
export class DataDirLockedError extends Error {
  constructor(dataDir: string, pid: string | undefined) {
    super(
      `data dir ${dataDir} is in use by another sluice process${pid ? ` (pid ${pid})` : ""}; ` +
        "stop it or choose another dataDir",
    );
    this.name = "DataDirLockedError";
  }
}

export interface DataDirLock {
  release(): void;
}

/**
 * Takes the data dir for this process. The lock is an exclusive SQLite lock (an OS
 * file lock underneath), so the kernel drops it when the process dies, even on
 * `kill -9`: no stale lock file to clean up. The pid beside it is for the message.
 */
export function lockDataDir(dataDir: string): DataDirLock {
  mkdirSync(dataDir, { recursive: true });
  const pidFile = join(dataDir, "sluice.pid");
  const db = new Database(join(dataDir, "sluice.lock"), { create: true });
  try {
    db.exec("PRAGMA locking_mode = EXCLUSIVE");
    db.exec("PRAGMA busy_timeout = 0");
    db.exec("BEGIN EXCLUSIVE");
  } catch {
    db.close();
    let pid: string | undefined;
    try {
      pid = readFileSync(pidFile, "utf8").trim();
    } catch {}
    throw new DataDirLockedError(dataDir, pid);
  }
  writeFileSync(pidFile, `${process.pid}\n`);
  return {
    release() {
      rmSync(pidFile, { force: true });
      db.close();
    },
  };
}
