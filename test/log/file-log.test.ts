import { expect, test } from "bun:test";
import { constants, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { FileEventLog } from "../../src/log/file/file-log.ts";

/** The open-file flags of this process's descriptor on `path`, from /proc (Linux). */
function flagsOf(path: string): number[] {
  return readdirSync("/proc/self/fd").flatMap((fd) => {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) !== path) return [];
      const m = /flags:\s+([0-7]+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"));
      return m ? [Number.parseInt(m[1]!, 8)] : [];
    } catch {
      return []; // closed meanwhile
    }
  });
}

// kill -9 keeps the page cache, so the crash tests cannot tell a synced write from an
// unsynced one; this checks the mechanism itself: every write to a segment is O_DSYNC.
test.if(process.platform === "linux")(
  "segments are written through O_DSYNC descriptors, new and reopened",
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "sluice-log-"));
    try {
      const logger = pino({ level: "silent" });
      const path = join(dir, "log", `${"1".padStart(20, "0")}.seg`);
      for (let run = 0; run < 2; run++) {
        const log = await FileEventLog.open({
          dir: join(dir, "log"),
          segmentBytes: 1 << 20,
          logger,
        });
        await log.append([new TextEncoder().encode(`{"run":${run}}`)]);
        const flags = flagsOf(path);
        expect(flags.length).toBeGreaterThan(0);
        for (const f of flags) expect(f & constants.O_DSYNC).toBe(constants.O_DSYNC);
        await log.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test("reads return every record in order, large ones (past a read chunk) included", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sluice-log-"));
  try {
    const log = await FileEventLog.open({
      dir: join(dir, "log"),
      segmentBytes: 1 << 22,
      logger: pino({ level: "silent" }),
    });
    const enc = new TextEncoder();
    const sizes = [10, 200_000, 30, 70_000, 5];
    await log.append(sizes.map((n, i) => enc.encode(`${i}:${"x".repeat(n)}`)));
    const got: number[] = [];
    let from = log.start();
    for (;;) {
      const page = log.read(from, 1);
      if (page.length === 0) break;
      got.push(page[0]!.payload.byteLength);
      from = page[0]!.next;
    }
    expect(got).toEqual(sizes.map((n) => n + 2));
    expect(log.read(log.start(), 100).map((r) => r.payload.byteLength)).toEqual(got);
    await log.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
