import { join } from "node:path";
import { readRecords } from "../log/file/reader.ts";
import { scanRecords } from "../log/file/record.ts";
import { listSegments, readSegmentBytes, segmentPath } from "../log/file/segments.ts";
import type { LogPosition } from "../log/interface.ts";

export interface TailOptions {
  dataDir: string;
  fromStart: boolean;
  follow: boolean;
  source?: string;
  /** Events to show from the end when not from the start. */
  lines: number;
  write: (line: string) => void;
  /** Stops following when aborted. */
  signal?: AbortSignal;
}

const PAGE = 5000;

/** `sluice log tail`: stored events as NDJSON, one per line. */
export async function tailLog(opts: TailOptions): Promise<void> {
  const dir = join(opts.dataDir, "log");
  const decoder = new TextDecoder();
  const matches = (text: string) =>
    opts.source === undefined ||
    (JSON.parse(text) as { sourceId?: string }).sourceId === opts.source;

  let from: LogPosition = { segment: listSegments(dir)[0] ?? 0, offset: 0 };
  if (!opts.fromStart) {
    // Keep only the last `lines` matching events while walking to the end.
    const last: string[] = [];
    for (;;) {
      const page = readRecords(dir, from, PAGE);
      if (page.length === 0) break;
      for (const r of page) {
        const text = decoder.decode(r.payload);
        if (!matches(text)) continue;
        last.push(text);
        if (last.length > opts.lines) last.shift();
      }
      from = page.at(-1)!.next;
    }
    for (const line of last) opts.write(line);
  }
  for (;;) {
    const page = readRecords(dir, from, PAGE);
    for (const r of page) {
      const text = decoder.decode(r.payload);
      if (matches(text)) opts.write(text);
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

/** `sluice log verify`: checks every record's length and checksum in every segment. */
export function verifyLog(dataDir: string): VerifyReport {
  const dir = join(dataDir, "log");
  const report: VerifyReport = { segments: 0, records: 0, bytes: 0, problems: [] };
  for (const seg of listSegments(dir)) {
    const { buf, size } = readSegmentBytes(segmentPath(dir, seg), 0);
    const scan = scanRecords(buf);
    report.segments++;
    report.records += scan.records.length;
    report.bytes += size;
    if (scan.problem) report.problems.push({ segment: seg, ...scan.problem });
  }
  return report;
}
