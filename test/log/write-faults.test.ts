import { expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileEventLog } from "../../src/log/file/file-log.ts";
import { segmentPath } from "../../src/log/file/segments.ts";
import type { EventLog, LogRecord } from "../../src/log/interface.ts";
import { memoryLogger } from "../support/logger.ts";
import { tempDirs } from "../support/process.ts";
import { waitFor } from "../support/wait.ts";

// Issue 13: a write the log cannot make (a vanished or replaced segment file, a new
// segment it cannot create) is a storage failure: the append fails, healthy() is false
// (so /ready is 503), an error is logged; the log tries again by itself, and once a
// write works it is healthy again, without restart and with every acknowledged record
// of the remaining files still read.

const tempDir = tempDirs();

const enc = new TextEncoder();
const dec = new TextDecoder();
const event = (id: string) => enc.encode(JSON.stringify({ messageId: id, pad: "x".repeat(200) }));

function readIds(log: EventLog): string[] {
  const out: LogRecord[] = [];
  let from = log.start();
  for (;;) {
    const page = log.read(from, 50);
    if (page.length === 0) break;
    out.push(...page);
    from = page.at(-1)!.next;
  }
  return out.map((r) => (JSON.parse(dec.decode(r.payload)) as { messageId: string }).messageId);
}

async function openLog(segmentBytes: number) {
  const root = tempDir("faults");
  const dir = join(root, "log");
  const { logger, lines } = memoryLogger();
  const failures: Error[] = [];
  const log = await FileEventLog.open({
    dir,
    segmentBytes,
    logger,
    onWriteFailure: (e) => failures.push(e),
  });
  return { dir, log, lines, failures };
}

/** Appends `ids` one request at a time; returns those acknowledged. */
async function appendEach(log: EventLog, ids: string[]): Promise<string[]> {
  const acked: string[] = [];
  for (const id of ids) {
    await log.append([event(id)]).then(
      () => acked.push(id),
      () => {},
    );
  }
  return acked;
}

const range = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

for (const fault of ["deleted", "replaced"] as const) {
  test(`the segment being written is ${fault}: appends fail, then a new segment is started`, async () => {
    const { dir, log, lines, failures } = await openLog(4096);
    const before = await appendEach(log, range("a", 40)); // several segments
    expect(before).toHaveLength(40);
    const current = log.end().segment;
    expect(current).toBeGreaterThan(2);
    const path = segmentPath(dir, current);
    const kept = log
      .read({ segment: 1, offset: 0 }, 1000)
      .filter((r) => r.position.segment < current)
      .map((r) => (JSON.parse(dec.decode(r.payload)) as { messageId: string }).messageId);

    if (fault === "deleted") rmSync(path);
    else {
      writeFileSync(`${path}.tmp`, "");
      renameSync(`${path}.tmp`, path);
    }
    // The write lands in a file no reader will find: not acknowledged.
    await expect(log.append([event("lost")])).rejects.toThrow(
      fault === "deleted" ? /vanished/ : /replaced/,
    );
    expect(log.healthy()).toBe(false);
    expect(failures.length).toBeGreaterThan(0);
    expect(lines.some((l) => l.level === 50 && String(l.msg).includes("append failed"))).toBe(true);

    // It recovers by itself (no append needed): a new segment after the highest one.
    await waitFor(() => log.healthy(), { what: "the log healthy again" });
    expect(log.end().segment).toBeGreaterThan(current);
    expect(lines.some((l) => l.msg === "event log: appends work again")).toBe(true);
    const after = await appendEach(log, range("b", 5));
    expect(after).toHaveLength(5);
    expect(readIds(log)).toEqual([...kept, ...after]);
    await log.close();
  });
}

test("a new segment that cannot be created fails appends until it can; no restart", async () => {
  const { dir, log, lines } = await openLog(4096);
  const acked = await appendEach(log, range("a", 10));
  const blocked = segmentPath(dir, log.end().segment + 1);
  // As root nothing is refused for permissions: a folder where the file should go
  // makes its creation fail the same way (EISDIR instead of EACCES).
  mkdirSync(blocked);
  const attempts = await appendEach(log, range("b", 20));
  expect(attempts.length).toBeLessThan(20);
  acked.push(...attempts);
  expect(log.healthy()).toBe(false);
  expect(lines.some((l) => l.level === 50 && String(l.msg).includes("append failed"))).toBe(true);
  // Still failing on the next append (retried, not given up).
  await expect(log.append([event("c")])).rejects.toThrow();
  expect(log.healthy()).toBe(false);

  rmSync(blocked, { recursive: true });
  await waitFor(() => log.healthy(), { what: "the log healthy again" });
  acked.push(...(await appendEach(log, range("d", 5))));
  expect(readIds(log)).toEqual(acked);
  await log.close();
});

/**
 * Makes creating files in `dir` fail with a permission error: chmod as a user, the
 * immutable attribute as root (whom permissions do not stop). Undefined if neither works.
 */
function refuseCreate(dir: string): { undo: () => void; code: string } | undefined {
  if (process.getuid?.() !== 0) {
    chmodSync(dir, 0o500);
    return { undo: () => chmodSync(dir, 0o700), code: "EACCES" };
  }
  const set = Bun.spawnSync(["chattr", "+i", dir]);
  if (set.exitCode !== 0) return undefined;
  return { undo: () => Bun.spawnSync(["chattr", "-i", dir]), code: "EPERM" };
}

/** Whether this machine lets the test refuse file creation (chattr needs CAP_LINUX_IMMUTABLE as root). */
function canRefuseCreate(): boolean {
  const probe = mkdtempSync(join(tmpdir(), "sluice-refuse-"));
  try {
    const refused = refuseCreate(probe);
    refused?.undo();
    return refused !== undefined;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

const REFUSABLE = canRefuseCreate();
if (!REFUSABLE) console.warn("skipped: neither chmod nor chattr can refuse file creation here");

test.skipIf(!REFUSABLE)(
  "a new segment refused for permissions (EACCES, or EPERM as root) heals once allowed",
  async () => {
    const { dir, log, lines } = await openLog(4096);
    const acked = await appendEach(log, range("a", 10));
    const refused = refuseCreate(dir)!;
    try {
      acked.push(...(await appendEach(log, range("b", 30))));
      expect(log.healthy()).toBe(false);
      const line = lines.find((l) => l.level === 50 && String(l.msg).includes("append failed"));
      expect(JSON.stringify(line)).toContain(refused.code);
    } finally {
      refused.undo();
    }
    await waitFor(() => log.healthy(), { what: "the log healthy again" });
    acked.push(...(await appendEach(log, range("c", 5))));
    expect(readIds(log).slice(-5)).toEqual(range("c", 5));
    expect(readIds(log)).toEqual(acked);
    await log.close();
  },
);
