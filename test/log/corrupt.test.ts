import { expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { verifyLog } from "../../src/cli/log.ts";
import { fileReplaySource } from "../../src/delivery/replay-source.ts";
import { FileEventLog } from "../../src/log/file/file-log.ts";
import type { CorruptRecord } from "../../src/log/file/reader.ts";
import { encodeRecordsV1 } from "../../src/log/file/record.ts";
import { segmentPath } from "../../src/log/file/segments.ts";
import type { EventLog, LogRecord } from "../../src/log/interface.ts";
import { memoryLogger } from "../support/logger.ts";
import { cleanedAfterEach, sendBatch, tempDirs, trackEvents } from "../support/process.ts";
import { makeTestConfig, runCli } from "../support/server.ts";

// SPEC 5 / issue 13: a damaged record is skipped and reported with its position, and
// reading goes on at the next valid record; `log verify` names every bad record;
// segments of the old frame format are still read after an upgrade.

const { dirs, spawn } = cleanedAfterEach();
const tempDir = tempDirs();

const enc = new TextEncoder();
const dec = new TextDecoder();
const event = (i: number) => enc.encode(JSON.stringify({ messageId: `m-${i}`, sourceId: "web" }));

function readAll(log: EventLog): LogRecord[] {
  const out: LogRecord[] = [];
  let from = log.start();
  for (;;) {
    // Small pages: the damage sits across page and chunk boundaries.
    const page = log.read(from, 7);
    if (page.length === 0) return out;
    out.push(...page);
    from = page.at(-1)!.next;
  }
}

const ids = (records: LogRecord[]) =>
  records.map((r) => (JSON.parse(dec.decode(r.payload)) as { messageId: string }).messageId);

/** Flips one bit at `at` of a file. */
function flip(path: string, at: number) {
  const buf = readFileSync(path);
  buf[at]! ^= 0x10;
  writeFileSync(path, buf);
}

test("a flipped byte skips only that record; each is reported once with its position", async () => {
  const dir = join(tempDir("corrupt"), "log");
  const { logger, lines } = memoryLogger();
  const seen: CorruptRecord[] = [];
  const open = () =>
    FileEventLog.open({ dir, segmentBytes: 1 << 20, logger, onCorrupt: (c) => seen.push(c) });
  let log = await open();
  for (let i = 0; i < 100; i += 10) {
    await log.append(Array.from({ length: 10 }, (_, j) => event(i + j)));
  }
  const before = readAll(log);
  expect(before).toHaveLength(100);
  await log.close();
  // One payload byte of record 40, one magic byte of record 70 (its header).
  const path = segmentPath(dir, 1);
  flip(path, before[40]!.position.offset + 16 + 5);
  flip(path, before[70]!.position.offset + 1);

  // Delivery, the inspector and /ready read through the log: at start it finds both in
  // the segment being written, logs them and keeps every record after them.
  log = await open();
  const wanted = ids(before).filter((id) => id !== "m-40" && id !== "m-70");
  expect(ids(readAll(log))).toEqual(wanted);
  expect(ids(readAll(log))).toEqual(wanted); // read again: reported once
  const errors = lines.filter((l) => l.msg === "event log: corrupt record skipped");
  expect(errors.map((l) => [l.segment, l.offset, l.level])).toEqual([
    [1, before[40]!.position.offset, 50],
    [1, before[70]!.position.offset, 50],
  ]);
  expect(errors[0]!.reason).toBe("checksum mismatch");
  expect(errors[1]!.reason).toBe("bad magic");
  expect(seen).toHaveLength(2);
  // Nothing truncated: the records after the damage are still there, appends go on.
  expect(lines.some((l) => String(l.msg).includes("tail truncated"))).toBe(false);
  await log.append([event(100)]);
  expect(ids(readAll(log)).at(-1)).toBe("m-100");
  await log.close();

  // Replay reads the segment files directly: the same records, the damage reported.
  const replayed: string[] = [];
  const reported: CorruptRecord[] = [];
  const source = fileReplaySource(join(dir, ".."), "web", "oldest", (c) => reported.push(c));
  for (;;) {
    const { records, end } = await source.read(9);
    replayed.push(...records.map((r) => r.event().messageId as string));
    if (end) break;
  }
  expect(replayed).toEqual([...wanted, "m-100"]);
  expect(reported.map((c) => c.offset)).toEqual([
    before[40]!.position.offset,
    before[70]!.position.offset,
  ]);
});

test("damage in an older segment is skipped there too, and reading goes on", async () => {
  const dir = join(tempDir("corrupt"), "log");
  const { logger, lines } = memoryLogger();
  const log = await FileEventLog.open({ dir, segmentBytes: 4096, logger });
  for (let i = 0; i < 300; i += 10) {
    await log.append(Array.from({ length: 10 }, (_, j) => event(i + j)));
  }
  const before = readAll(log);
  const victim = before.find((r) => r.position.segment === 1 && r.next.segment === 1)!;
  // Its length field: the frame claims far more bytes than the segment holds.
  flip(segmentPath(dir, 1), victim.position.offset + 7);
  const name = ids([victim])[0];
  expect(ids(readAll(log))).toEqual(ids(before).filter((id) => id !== name));
  expect(lines.filter((l) => l.msg === "event log: corrupt record skipped")).toHaveLength(1);
  await log.close();
});

test("segments of the old frame format are read after an upgrade; new records go to a new segment", async () => {
  const root = tempDir("corrupt");
  const dir = join(root, "log");
  mkdirSync(dir);
  const old = Array.from({ length: 20 }, (_, i) => event(i));
  writeFileSync(segmentPath(dir, 1), encodeRecordsV1(old));
  const { logger, lines } = memoryLogger();
  const log = await FileEventLog.open({ dir, segmentBytes: 1 << 20, logger });
  expect(ids(readAll(log))).toEqual(Array.from({ length: 20 }, (_, i) => `m-${i}`));
  await log.append([event(20), event(21)]);
  expect(log.end().segment).toBe(2);
  expect(ids(readAll(log))).toEqual(Array.from({ length: 22 }, (_, i) => `m-${i}`));
  await log.close();
  expect(verifyLog(root)).toMatchObject({ segments: 2, records: 22, problems: [] });
  expect(lines.some((l) => l.level === 40 || l.level === 50)).toBe(false);

  // Damage in an old segment: no marker to resynchronise on, the rest of it is skipped
  // and reported; the next segment is read.
  flip(segmentPath(dir, 1), 12 * 6 + 300);
  const reopened = await FileEventLog.open({ dir, segmentBytes: 1 << 20, logger });
  const got = ids(readAll(reopened));
  expect(got.length).toBeGreaterThan(2);
  expect(got.length).toBeLessThan(22);
  expect(got.slice(-2)).toEqual(["m-20", "m-21"]);
  expect(lines.filter((l) => l.msg === "event log: corrupt record skipped")).toHaveLength(1);
  await reopened.close();
  expect(verifyLog(root).problems).toHaveLength(1);
});

test("log tail prints every record but the damaged ones; log verify names each of them", async () => {
  const made = makeTestConfig();
  dirs.push(made.dir);
  const s = await spawn(made.configFile);
  const events = trackEvents("cli", 60);
  for (let i = 0; i < events.length; i += 10) {
    await sendBatch(s.url, made.keys.server, events.slice(i, i + 10));
  }
  s.proc.kill("SIGTERM");
  await s.proc.exited;

  const dir = join(made.dataDir, "log");
  const { logger } = memoryLogger();
  const log = await FileEventLog.open({ dir, segmentBytes: 1 << 26, logger });
  const records = readAll(log);
  await log.close();
  expect(records).toHaveLength(60);
  const bad = [records[10]!, records[33]!];
  for (const r of bad) flip(segmentPath(dir, r.position.segment), r.position.offset + 20);

  const verify = await runCli(["log", "verify", "--config", made.configFile]);
  expect(verify.code).toBe(1);
  for (const r of bad) {
    expect(verify.stderr).toContain(
      `segment ${r.position.segment} offset ${r.position.offset}: checksum mismatch`,
    );
  }
  expect(verify.stdout).toContain("2 bad");

  const tail = await runCli(["log", "tail", "--from-start", "--config", made.configFile]);
  expect(tail.code).toBe(0);
  const got = tail.stdout
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => (JSON.parse(l) as { messageId: string }).messageId);
  expect(got).toEqual(
    events.map((e) => e.messageId as string).filter((_, i) => i !== 10 && i !== 33),
  );
  for (const r of bad) {
    expect(tail.stderr).toContain(`segment ${r.position.segment} offset ${r.position.offset}`);
  }

  // The server starts, says where the damage is, counts it, and keeps serving.
  const again = await spawn(made.configFile);
  expect(again.output()).toMatch(/"level":50[^\n]*"msg":"event log: corrupt record skipped"/);
  const metrics = await (await fetch(`${again.url}/metrics`)).text();
  expect(metrics).toMatch(/^sluice_log_corrupt_records_total 2$/m);
  expect((await fetch(`${again.url}/ready`)).status).toBe(200);
  again.proc.kill("SIGTERM");
  await again.proc.exited;
}, 30_000);
