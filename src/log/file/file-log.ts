import {
  closeSync,
  constants,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { type FileHandle, open, unlink } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import type { Logger } from "pino";
import type { EventLog, LogEntry, LogPosition, LogRecord, SegmentInfo } from "../interface.ts";
import { GroupLinger } from "./linger.ts";
import { preallocate } from "./preallocate.ts";
import { type CorruptRecord, readRecords, type SegmentScan, scanSegment } from "./reader.ts";
import { encodeFrames, type Framed, isZero } from "./record.ts";
import { listSegments, readSegmentBytes, segmentPath } from "./segments.ts";

export interface FileEventLogOptions {
  dir: string;
  segmentBytes: number;
  logger: Logger;
  /** Called with each group's flush duration in seconds (metrics). */
  onFlush?: (seconds: number, records: number) => void;
  /** Called once for each damaged record found (at start or by a reader), after it is logged. */
  onCorrupt?: (corrupt: CorruptRecord) => void;
  /** Reserve each new segment's bytes up front (fallocate, default true). */
  preallocate?: boolean;
  /**
   * Write zeros over the reserved bytes a little ahead of the records, in the
   * background, while group commits are small (default true; see ZERO_AHEAD).
   */
  zeroAhead?: boolean;
  /**
   * Let a small group wait for more appends before its write, up to 0.5 ms after its
   * first (a timer ends the wait ~1 ms on when none comes), while appends come faster
   * than that (default true; see linger.ts).
   */
  linger?: boolean;
  /** Called with each failed append (metrics); the log itself logs the failure. */
  onWriteFailure?: (error: Error) => void;
}

interface PendingAppend {
  bytes: Uint8Array;
  count: number;
  /** When it was appended (performance.now()). */
  at: number;
  resolve: (end: LogPosition) => void;
  reject: (err: Error) => void;
}

/**
 * Segment files are written with O_DSYNC: each write returns only once its data (and
 * the file size needed to read it back) is on stable storage, exactly what a write
 * followed by fdatasync guarantees, in one system call on Bun's I/O thread instead of
 * two round trips from the event loop (measured in bench/RESULTS.md: 4% less CPU per
 * single event in process; over HTTP the difference is within the noise).
 */
const SEGMENT_NEW = constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC | constants.O_DSYNC;
const SEGMENT_REOPEN = constants.O_RDWR | constants.O_DSYNC;
/** Linux's limit on buffers per writev. */
const IOV_MAX = 1024;
/** How often a failing log tries to write again without an append asking it to. */
const RETRY_MS = 1000;
/** The zeros a failing log writes (and cuts back) to see whether writes work again. */
const PROBE_BYTES = 4096;

/**
 * Zeros ahead of the records. fallocate reserves blocks as "unwritten": the first
 * write into one still changes the file's metadata (the extent becomes written), so
 * every small group commit is also a journal commit. Blocks already written with
 * zeros are not: a synchronous write into them commits only data (on the quiet
 * machine 303 µs p50 against 510 µs for a fallocated file, bench/RESULTS.md). The log
 * keeps up to ZERO_AHEAD bytes past its records zero-written, ZERO_CHUNK at a time on
 * Bun's I/O threads, starting a chunk past the records so that a group commit does not
 * wait for zeros (it would if it reached a chunk in flight). Only while the group commits
 * are small (ZERO_GROUP_MAX on average): a large one pays the metadata once for much
 * data, and zeros would only double the bytes written (batches, the soak).
 */
const ZERO_AHEAD = 4 * 1024 * 1024;
const ZERO_CHUNK = 1024 * 1024;
const ZERO_GROUP_MAX = 64 * 1024;
let zeros: Uint8Array | undefined;

/**
 * The embedded event log: append-only segment files with group commit. Appends that
 * arrive while a flush is running are written together by the next flush, with one
 * synchronous-data write (the fdatasync of SPEC 5, see SEGMENT_NEW) for all of them; a
 * small group may wait a little for more first (GroupLinger).
 */
export class FileEventLog implements EventLog {
  private handle!: FileHandle;
  /** The open segment's inode: a file vanished or replaced under it is a storage failure. */
  private file = { dev: 0, ino: 0 };
  /** The current segment's path (checked after each group commit: `checkFile`). */
  private filePath = "";
  private segment = 0;
  /** Bytes of the current segment that are durable. */
  private size = 0;
  /** Bytes reserved for the current segment (preallocated, zeros past `size`); 0 if not. */
  private allocated = 0;
  /** Where the zeros written ahead in the current segment end (Infinity: write no more). */
  private zeroed = 0;
  /** The zero write in flight (`done` never rejects), if any. */
  private zeroing: { from: number; done: Promise<void> } | null = null;
  /** Bumped by stopZeroing: a chunk started before neither moves `zeroed` nor starts the next. */
  private zeroGeneration = 0;
  /** The end of the group write in flight, if any: zeros are written only past it. */
  private writingTo = 0;
  /** Bytes per group commit, moving average (decides whether zeros are written ahead). */
  private groupBytes = ZERO_GROUP_MAX;
  private pending: PendingAppend[] = [];
  /** Whether a small group waits for more appends before its write. */
  private readonly linger = new GroupLinger();
  private flushing: Promise<void> | null = null;
  /** Why appends fail, while they do: /ready is 503 until one succeeds again. */
  private failure: Error | null = null;
  /** The current segment cannot be written on (vanished, replaced, not cut back). */
  private needNewSegment = false;
  /** When `repair` last ran (performance.now()). */
  private repairedAt = Number.NEGATIVE_INFINITY;
  private retryTimer: ReturnType<typeof setInterval> | null = null;
  private closed = false;
  private readonly listeners = new Set<() => void>();
  /** Damaged records already reported (`segment:offset`): each is logged once. */
  private readonly reported = new Set<string>();

  private constructor(private readonly opts: FileEventLogOptions) {}

  /** Opens the log, truncating a torn tail of the last segment. */
  static async open(opts: FileEventLogOptions): Promise<FileEventLog> {
    const log = new FileEventLog(opts);
    mkdirDurable(opts.dir);
    const segments = listSegments(opts.dir);
    const last = segments.at(-1);
    if (last === undefined) {
      await log.startSegment(1);
    } else {
      // A crash between starting a segment and trimming the one before leaves that
      // one's reserved zeros: sizes, retention and readers would count them.
      const previous = segments.at(-2);
      if (previous !== undefined) trimZeroTail(segmentPath(opts.dir, previous), opts.logger);
      log.segment = last;
      const recovered = recoverSegment(segmentPath(opts.dir, last), opts.logger);
      for (const c of recovered.corrupt) log.reportCorrupt({ segment: last, ...c });
      log.size = recovered.validEnd;
      log.zeroed = recovered.validEnd; // what lies past it may be unwritten reservation
      log.filePath = segmentPath(opts.dir, last);
      log.handle = await open(log.filePath, SEGMENT_REOPEN);
      log.file = await identity(log.handle);
      // Zeros past the records (preallocated before a crash) are still free to write on.
      log.allocated = (await log.handle.stat()).size;
      // A segment of the old format is only read from now on: new records go to a new one.
      if (recovered.format === 1) await log.startSegment(last + 1);
    }
    return log;
  }

  append(records: readonly LogEntry[]): Promise<LogPosition> {
    if (this.closed) return Promise.reject(new Error("event log is closed"));
    return this.appendFramed(encodeFrames(records));
  }

  /**
   * Appends records already framed (`encodeFrames`, whose sizes tell the caller each
   * record's place: they end at the position this resolves with).
   */
  appendFramed(framed: Framed): Promise<LogPosition> {
    if (this.closed) return Promise.reject(new Error("event log is closed"));
    const { bytes } = framed;
    const at = performance.now();
    return new Promise((resolve, reject) => {
      this.pending.push({ bytes, count: framed.sizes.length, at, resolve, reject });
      this.linger.appended(at, this.pending.length);
      if (!this.flushing) this.flushing = this.flushLoop();
    });
  }

  end(): LogPosition {
    return { segment: this.segment, offset: this.size };
  }

  start(): LogPosition {
    return { segment: listSegments(this.opts.dir)[0] ?? this.segment, offset: 0 };
  }

  healthy(): boolean {
    return this.failure === null && !this.closed;
  }

  read(from: LogPosition, max: number): LogRecord[] {
    return readRecords(this.opts.dir, from, max, this.end(), (c) => this.reportCorrupt(c));
  }

  onAppend(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  segments(): SegmentInfo[] {
    return listSegments(this.opts.dir).flatMap((segment) => {
      try {
        const st = statSync(segmentPath(this.opts.dir, segment));
        // The segment being written may be longer than its records (preallocated).
        const bytes = segment === this.segment ? Math.min(st.size, this.size) : st.size;
        return [{ segment, bytes, modifiedAt: st.mtimeMs }];
      } catch {
        return []; // deleted meanwhile
      }
    });
  }

  /** Logs a damaged record (once per position) and counts it. */
  private reportCorrupt(c: CorruptRecord): void {
    const key = `${c.segment}:${c.offset}`;
    if (this.reported.has(key)) return;
    if (this.reported.size > 10_000) this.reported.clear();
    this.reported.add(key);
    this.opts.logger.error(
      { segment: c.segment, offset: c.offset, bytes: c.bytes, reason: c.reason },
      "event log: corrupt record skipped",
    );
    this.opts.onCorrupt?.(c);
  }

  deleteSegment(segment: number): void {
    if (segment >= this.segment) throw new Error(`segment ${segment} is being written`);
    rmSync(segmentPath(this.opts.dir, segment), { force: true });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.linger.stop();
    while (this.flushing) await this.flushing;
    await this.stopZeroing();
    this.stopRetrying();
    // A clean stop leaves the segment as long as its records (no zero tail).
    await this.trimmed(this.handle, this.size, this.allocated);
    await this.handle.close().catch(() => {});
  }

  /** Cuts a preallocated segment's unused zeros off (best effort: zeros are harmless). */
  private async trimmed(handle: FileHandle, size: number, allocated: number): Promise<void> {
    if (allocated <= size) return;
    await handle.truncate(size).catch(() => {});
  }

  private async flushLoop(): Promise<void> {
    try {
      do {
        // Failing: try to write again first (a new segment, a probe write); the appends
        // waiting are answered with the failure if that does not work yet.
        // At most one repair per RETRY_MS/2 (the retry timer's pace): appends arriving
        // in between fail at once instead of each trying (and logging) again.
        if (this.failure && performance.now() - this.repairedAt >= RETRY_MS / 2) {
          this.repairedAt = performance.now();
          await this.repair();
        }
        if (this.pending.length === 0) break;
        // Not while failing (the appends fail at once) or closing.
        if (this.opts.linger !== false && !this.failure && !this.closed) {
          const lingering = this.linger.wait(this.pending[0]!.at, this.pending.length);
          if (lingering) await lingering;
        }
        const group = this.pending;
        this.pending = [];
        await this.flushGroup(group);
      } while (this.pending.length > 0);
    } finally {
      this.flushing = null;
    }
  }

  private async flushGroup(group: PendingAppend[]): Promise<void> {
    const started = performance.now();
    try {
      if (this.failure) throw this.failure;
      if (this.size >= this.opts.segmentBytes) await this.startSegment(this.segment + 1);
      const total = group.reduce((n, g) => n + g.bytes.byteLength, 0);
      // Zeros being written where these records go would land after (or over) them.
      this.writingTo = this.size + total;
      while (this.zeroing && this.writingTo > this.zeroing.from) await this.zeroing.done;
      // Durable before ack: an acknowledged event must survive power loss. The handle is
      // O_DSYNC, so each write returns only once its bytes are on disk (as fdatasync).
      let written = 0;
      if (group.length > 1 && group.length <= IOV_MAX) {
        // One gathered write: no copy of the whole group (megabytes for batches).
        ({ bytesWritten: written } = await this.handle.writev(
          group.map((g) => g.bytes),
          this.size,
        ));
      }
      // A single append, a very large group, or what a short gathered write left.
      const buf =
        group.length === 1 ? group[0]!.bytes : written < total ? concat(group, total) : null;
      while (buf && written < total) {
        const { bytesWritten } = await this.handle.write(
          buf,
          written,
          total - written,
          this.size + written,
        );
        written += bytesWritten;
      }
      // Written into the file this log opened: if that file was deleted or replaced
      // meanwhile, these records are in no file a reader will find. Not acknowledged.
      this.checkFile();
      let at = this.size;
      for (const g of group) {
        at += g.bytes.byteLength;
        g.resolve({ segment: this.segment, offset: at });
      }
      this.size = at;
      for (const listener of this.listeners) listener();
      const records = group.reduce((n, g) => n + g.count, 0);
      this.opts.onFlush?.((performance.now() - started) / 1000, records);
      this.groupBytes += (total - this.groupBytes) / 8;
      this.zeroAhead();
    } catch (err) {
      this.writingTo = 0;
      const error = err instanceof Error ? err : new Error(String(err));
      this.opts.onWriteFailure?.(error);
      if (error !== this.failure) {
        if (!this.needNewSegment) await this.discardUnflushed();
        this.fail(error);
      }
      for (const g of group) g.reject(error);
    }
  }

  /**
   * Writes the next ZERO_CHUNK of zeros past the records when fewer than ZERO_AHEAD
   * are, and group commits are small (see ZERO_AHEAD); goes on by itself until enough
   * are. Never where a group is being written: past `writingTo`, and a group that
   * would reach a chunk in flight waits for it (flushGroup).
   */
  private zeroAhead(): void {
    if (this.zeroing || this.opts.zeroAhead === false || this.failure || this.closed) return;
    if (this.groupBytes > ZERO_GROUP_MAX) return;
    const end = Math.max(this.size, this.writingTo);
    // A chunk past the records' block: the next group commits must not reach it in flight.
    const from = Math.max(this.zeroed, Math.ceil(end / 4096) * 4096 + ZERO_CHUNK);
    const to = Math.min(this.allocated, from + ZERO_CHUNK);
    if (to <= from || from >= end + ZERO_AHEAD) return;
    const [handle, segment, generation] = [this.handle, this.segment, this.zeroGeneration];
    const current = () => this.zeroGeneration === generation;
    zeros ??= new Uint8Array(ZERO_CHUNK);
    const done = handle.write(zeros, 0, to - from, from).then(
      () => {
        if (current() && this.segment === segment && this.handle === handle) this.zeroed = to;
      },
      (err: Error) => {
        // Only a speed-up: the records are written into the reservation as before.
        this.opts.logger.warn(
          { err, segment },
          "event log: writing zeros ahead failed; records go into the reservation as written",
        );
        if (current() && this.segment === segment) this.zeroed = this.allocated;
      },
    );
    this.zeroing = {
      from,
      done: done.finally(() => {
        this.zeroing = null;
        // Stopped meanwhile (rotation, close, a fault): no next chunk of this run.
        if (current()) this.zeroAhead();
      }),
    };
  }

  /** Waits for the zeros in flight and writes no more into the current segment. */
  private async stopZeroing(): Promise<void> {
    // The chunk in flight must neither set `zeroed` back below Infinity nor chain the
    // next chunk (rotation, on the ack path, would wait for megabytes of O_DSYNC zeros).
    this.zeroGeneration++;
    this.zeroed = Number.POSITIVE_INFINITY;
    while (this.zeroing) await this.zeroing.done;
  }

  /** Throws when the current segment's path no longer names the file being written. */
  private checkFile(): void {
    const path = this.filePath;
    let st: { dev: number; ino: number } | undefined;
    try {
      st = statSync(path);
    } catch {
      st = undefined;
    }
    if (st?.dev !== this.file.dev || st?.ino !== this.file.ino) {
      this.needNewSegment = true;
      throw new Error(`event log segment ${path} ${st ? "was replaced" : "vanished"}`);
    }
  }

  /** Cuts back whatever part of a failed write reached the file, so it is never served. */
  private async discardUnflushed(): Promise<void> {
    await this.stopZeroing(); // zeros in flight would extend the file again past the cut
    try {
      this.allocated = 0; // the zeros past `size` are gone with it
      await this.handle.truncate(this.size);
      await this.handle.datasync();
    } catch {
      // Then this segment may hold part of a record that was never acknowledged.
      this.needNewSegment = true;
    }
  }

  /** Appends fail until `repair` works: logged, /ready 503, retried in the background. */
  private fail(error: Error): void {
    const first = this.failure === null;
    this.failure = error;
    if (first) {
      this.opts.logger.error(
        { err: error, segment: this.segment },
        "event log: append failed; /ready is 503 and ingest answers 503 until an append works again (retrying)",
      );
    }
    this.retryTimer ??= setInterval(() => {
      if (this.closed || !this.failure) return this.stopRetrying();
      if (!this.flushing) this.flushing = this.flushLoop();
    }, RETRY_MS);
    this.retryTimer.unref?.();
  }

  private stopRetrying(): void {
    if (this.retryTimer) clearInterval(this.retryTimer);
    this.retryTimer = null;
  }

  /**
   * Tries to make appends work again: a new segment when the current one cannot be
   * written on (or is full), then a probe write of zeros (the log's "nothing here yet")
   * past the last record, cut back at once: it fails while the disk is still full.
   */
  private async repair(): Promise<void> {
    try {
      if (this.needNewSegment) {
        // After whatever now holds the current segment's name (a replaced file).
        await this.startSegment(
          Math.max(this.segment, listSegments(this.opts.dir).at(-1) ?? 0) + 1,
        );
      } else if (this.size >= this.opts.segmentBytes) {
        await this.startSegment(this.segment + 1);
      }
      await this.stopZeroing();
      await this.handle.write(new Uint8Array(PROBE_BYTES), 0, PROBE_BYTES, this.size);
      await this.handle.truncate(Math.max(this.size, this.allocated));
      this.checkFile();
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      // A new cause (EACCES fixed, now ENOSPC) is logged too: the operator must see
      // what blocks appends now, not only what blocked them first.
      if (error.message !== this.failure?.message) {
        this.opts.logger.error(
          { err: error, segment: this.segment },
          "event log: appends still fail, for another reason (retrying)",
        );
      }
      this.failure = error;
      return;
    }
    this.opts.logger.warn(
      { segment: this.segment, after: this.failure?.message },
      "event log: appends work again",
    );
    this.failure = null;
    this.stopRetrying();
  }

  /**
   * Starts writing segment `n`. The new file is opened before the current one is let
   * go: if it cannot be (EACCES, ENOSPC), the log keeps its state and retries later.
   */
  private async startSegment(n: number): Promise<void> {
    const path = segmentPath(this.opts.dir, n);
    const handle = await open(path, SEGMENT_NEW);
    let file: { dev: number; ino: number };
    let allocated = 0;
    try {
      // Reserved up front (a full disk fails here, before any record is written).
      if (this.opts.preallocate !== false && preallocate(handle.fd, this.opts.segmentBytes)) {
        allocated = this.opts.segmentBytes;
      }
      file = await identity(handle);
      // The new file's directory entry must be durable too, or the segment could vanish.
      syncDir(this.opts.dir);
    } catch (err) {
      await handle.close().catch(() => {});
      // Nothing is in it: a retry must not leave one empty segment per failed try.
      await unlink(path).catch(() => {});
      throw err;
    }
    // Zeros still being written into the full segment: done before it is cut and closed.
    await this.stopZeroing();
    const previous = this.segment > 0 ? this.handle : undefined;
    const [previousSize, previousAllocated] = [this.size, this.allocated];
    this.handle = handle;
    this.file = file;
    this.filePath = path;
    this.segment = n;
    this.size = 0;
    this.allocated = allocated;
    this.zeroed = 0;
    this.writingTo = 0;
    this.needNewSegment = false;
    if (previous) {
      // A full segment is as long as its records: sizes on disk are the data's.
      await this.trimmed(previous, previousSize, previousAllocated);
      await previous.close().catch(() => {});
    }
    if (n > 1) this.opts.logger.info({ segment: n }, "event log segment rotated");
  }
}

/** The device and inode of an open file. */
async function identity(handle: FileHandle): Promise<{ dev: number; ino: number }> {
  const st = await handle.stat();
  return { dev: st.dev, ino: st.ino };
}

function concat(group: PendingAppend[], total: number): Uint8Array {
  const buf = new Uint8Array(total);
  let at = 0;
  for (const g of group) {
    buf.set(g.bytes, at);
    at += g.bytes.byteLength;
  }
  return buf;
}

/**
 * Cuts a closed segment back to its records when it ends in reserved zeros (nothing
 * else is touched: damage in a closed segment is reported by readers, never cut).
 */
function trimZeroTail(path: string, logger: Logger): void {
  const fd = openSync(path, "r+");
  try {
    const size = fstatSync(fd).size;
    const probe = Buffer.alloc(Math.min(size, 4096));
    readSync(fd, probe, 0, probe.byteLength, size - probe.byteLength);
    if (probe.byteLength === 0 || !isZero(probe)) return;
    const scan = scanSegment(readSegmentBytes(path, 0).buf);
    if (scan.tail || scan.validEnd >= size) return;
    ftruncateSync(fd, scan.validEnd);
    fsyncSync(fd);
    logger.info(
      { segment: path, bytes: scan.validEnd },
      "event log: reserved zeros cut from a closed segment",
    );
  } finally {
    closeSync(fd);
  }
}

/**
 * Finds the end of the last whole valid record and truncates anything after it. The
 * cut bytes are first copied to `<log>/quarantine/` so that nothing is destroyed: a
 * torn write is expected there, damage further back is for an operator to inspect.
 */
function recoverSegment(path: string, logger: Logger): SegmentScan {
  const { buf, size } = readSegmentBytes(path, 0);
  const scan = scanSegment(buf);
  if (scan.tail) {
    const quarantine = join(dirname(path), "quarantine");
    mkdirSync(quarantine, { recursive: true });
    const copy = join(quarantine, `${basename(path)}.${scan.validEnd}.bin`);
    // A preallocated segment's reserved zeros (up to segmentBytes) are nothing to
    // inspect: a long run of them at the end is left out of the copy (a few zeros may be
    // part of the torn record itself, and are kept).
    let last = buf.byteLength;
    while (last > scan.validEnd && buf[last - 1] === 0) last--;
    if (buf.byteLength - last < 4096) last = buf.byteLength;
    writeFileSync(copy, buf.subarray(scan.validEnd, last));
    truncateSync(path, scan.validEnd);
    const fd = openSync(path, "r+");
    fsyncSync(fd);
    closeSync(fd);
    logger.warn(
      {
        segment: path,
        reason: scan.tail.reason,
        validEnd: scan.validEnd,
        truncatedBytes: size - scan.validEnd,
        quarantined: copy,
      },
      "event log: torn or corrupt tail truncated",
    );
  }
  return scan;
}

/**
 * `mkdir -p`, then fsync the parent of every folder it made: a new directory entry is
 * only durable once its parent is synced, and the first acknowledged events must not
 * vanish with a `log/` folder that a power loss forgot.
 */
function mkdirDurable(dir: string): void {
  const missing: string[] = [];
  for (let d = resolve(dir); !existsSync(d); d = dirname(d)) missing.push(d);
  if (missing.length === 0) return;
  mkdirSync(dir, { recursive: true });
  for (const d of missing) syncDir(dirname(d));
}

function syncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
