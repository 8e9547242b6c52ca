import { existsSync, mkdirSync, renameSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { dirname } from "node:path";
import type { StoredEvent } from "../../events/schema.ts";
import type { DeliveryOutcome, Destination } from "../interface.ts";

/** Errors a retry cannot fix: a person must change a permission or the path. */
const PERMANENT = new Set(["EACCES", "EPERM", "EROFS", "EISDIR", "ENOTDIR"]);

export interface FileOptions {
  path: string;
  /** Rotate (rename to `<path>.<timestamp>[.n]`) once the file would pass this size. */
  maxBytes?: number;
}

/**
 * Appends NDJSON, flushed to disk before a batch is confirmed; rotates by size. Calls
 * run one at a time (a replay or redrive may deliver beside the connection's consumer).
 */
export class FileDestination implements Destination {
  readonly type = "file";
  private handle: FileHandle | null = null;
  private size = 0;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: FileOptions) {}

  deliver(events: StoredEvent[]): Promise<DeliveryOutcome> {
    const run = this.queue.then(() => this.append(events));
    this.queue = run.catch(() => {});
    return run;
  }

  private async append(events: StoredEvent[]): Promise<DeliveryOutcome> {
    const text = `${events.map((e) => JSON.stringify(e)).join("\n")}\n`;
    const bytes = Buffer.from(text);
    try {
      const max = this.opts.maxBytes ?? 100 * 1024 * 1024;
      let handle = await this.open();
      if (this.size > 0 && this.size + bytes.byteLength > max) {
        await this.rotate();
        handle = await this.open();
      }
      await handle.appendFile(bytes);
      await handle.datasync();
      this.size += bytes.byteLength;
      return { ok: true };
    } catch (err) {
      await this.handle?.close().catch(() => {});
      this.handle = null;
      const code = (err as NodeJS.ErrnoException).code;
      return {
        ok: false,
        transient: !PERMANENT.has(code ?? ""),
        failure: { status: code, message: `file write failed: ${(err as Error).message}` },
      };
    }
  }

  private async open(): Promise<FileHandle> {
    if (this.handle) return this.handle;
    mkdirSync(dirname(this.opts.path), { recursive: true });
    this.handle = await open(this.opts.path, "a");
    this.size = (await this.handle.stat()).size;
    return this.handle;
  }

  private async rotate(): Promise<void> {
    await this.handle?.close();
    this.handle = null;
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    let target = `${this.opts.path}.${stamp}`;
    for (let n = 1; existsSync(target); n++) target = `${this.opts.path}.${stamp}.${n}`;
    renameSync(this.opts.path, target);
  }

  /** Closes the file once what is being written is done (queued like a delivery). */
  close(): Promise<void> {
    // Closing beside an append in flight let that append reopen the file, and the
    // handle was left to the garbage collector.
    const closing = this.queue.then(async () => {
      await this.handle?.close();
      this.handle = null;
    });
    this.queue = closing.catch(() => {});
    return closing;
  }
}
