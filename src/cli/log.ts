import { join } from "node:path";
import { type CorruptRecord, readRecords, scanSegment } from "../log/file/reader.ts";
import { listSegments, readSegmentBytes, segmentPath } from "../log/file/segments.ts";
import type { LogPosition, LogRecord } from "../log/interface.ts";

export interface TailOptions {
  dataDir: string;
  fromStart: boolean;
  follow: boolean;
  source?: string;
  /** Events to show from the end when not from the start. */
  lines: number;
  write: (line: string) => void;
  /** Told of each damaged record skipped (once each). */
  warn?: (corrupt: CorruptRecord) => void;
  /** Stops following when aborted. */
  signal?: AbortSignal;
}

const PAGE = 5000;

/** `sluice log tail`: stored events as NDJSON, one per line. */
export async function tailLog(opts: TailOptions): Promise<void> {
  const dir = join(opts.dataDir, "log");
  const decoder = new TextDecoder();
  // A record's frame names its source (v3): only older records are parsed to find it.
  const matches = (r: LogRecord, text: string) =>
    opts.source === undefined ||
    (r.sourceId ?? (JSON.parse(text) as { sourceId?: string }).sourceId) === opts.source;

  const reported = new Set<string>();
  const onCorrupt = (c: CorruptRecord) => {
    const key = `${c.segment}:${c.offset}`;
    if (reported.has(key)) return;
    reported.add(key);
    opts.warn?.(c);
  };
  let from: LogPosition = { segment: listSegments(dir)[0] ?? 0, offset: 0 };
  if (!opts.fromStart) {
    // Keep only the last `lines` matching events while walking to the end.
    const last: string[] = [];
    for (;;) {
      const page = readRecords(dir, from, PAGE, undefined, onCorrupt);
      if (page.length === 0) break;
      for (const r of page) {
        if (opts.source !== undefined && r.sourceId !== undefined && r.sourceId !== opts.source) {
          continue;
        }
        const text = decoder.decode(r.payload);
        if (!matches(r, text)) continue;
        last.push(text);
        if (last.length > opts.lines) last.shift();
      }
      from = page.at(-1)!.next;
    }
    for (const line of last) opts.write(line);
  }
  for (;;) {
    const page = readRecords(dir, from, PAGE, undefined, onCorrupt);
    for (const r of page) {
      if (opts.source !== undefined && r.sourceId !== undefined && r.sourceId !== opts.source) {
        continue;
      }
      const text = decoder.decode(r.payload);
      if (matches(r, text)) opts.write(text);
    }
    if (page.length > 0) from = page.at(-1)!.next;
    if (page.length === PAGE) continue;
    if (!opts.follow || opts.signal?.aborted) return;
    await Bun.sleep(200);
    if (opts.signal?.aborted) return;
  }
}

export interface VerifyReport {
  segments: number;
  records: number;
  bytes: number;
  problems: { segment: number; offset: number; reason: string }[];
}

/**
 * `sluice log verify`: checks every record's length and checksum in every segment, and
 * names each damaged record and each torn tail (a zero-filled tail is not damage).
 */
export function verifyLog(dataDir: string): VerifyReport {
  const dir = join(dataDir, "log");
  const report: VerifyReport = { segments: 0, records: 0, bytes: 0, problems: [] };
  for (const seg of listSegments(dir)) {
    const { buf, size } = readSegmentBytes(segmentPath(dir, seg), 0);
    const scan = scanSegment(buf);
    report.segments++;
    report.records += scan.records;
    report.bytes += scan.tail ? size : scan.validEnd; // a preallocated zero tail is no data
    for (const c of scan.corrupt) {
      report.problems.push({ segment: seg, offset: c.offset, reason: c.reason });
    }
    if (scan.tail) report.problems.push({ segment: seg, ...scan.tail });
  }
  return report;
}
