import {
  closeSync,
  fsyncSync,
  openSync,
  realpathSync,
  renameSync,
  statSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";

/**
 * Replaces a config file's content atomically: a temp file beside it (same mode),
 * fsynced, then renamed over it. A server reading the file on SIGHUP sees the old
 * or the new text, never half of it. A symlinked config is written through its link.
 */
export function replaceConfigFile(file: string, text: string): void {
  const target = realpathSync(file);
  const mode = statSync(target).mode & 0o777;
  const temp = join(dirname(target), `.${basename(target)}.${process.pid}.tmp`);
  const fd = openSync(temp, "w", mode);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, target);
}
