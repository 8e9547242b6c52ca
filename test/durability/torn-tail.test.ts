import { expect, test } from "bun:test";
import { appendFileSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import {
  cleanedAfterEach,
  exitCode,
  segmentFiles,
  sendBatch,
  trackEvents,
} from "../support/process.ts";
import {
  makeTestConfig,
  runCli,
  type SpawnedServer,
  spawnServer,
  tailIds,
} from "../support/server.ts";

// SPEC 5: on start a torn or corrupt tail is detected, truncated and reported, never
// served; `log verify` checks every record's checksum.

const { dirs, procs } = cleanedAfterEach();

type Made = ReturnType<typeof makeTestConfig>;

async function spawn(made: Made) {
  const s = await spawnServer(made.configFile);
  procs.push(s);
  return s;
}

async function stop(s: SpawnedServer) {
  s.proc.kill("SIGTERM");
  expect(await exitCode(s.proc)).toBe(0);
}

/** A config with 50 stored events (`torn-0` … `torn-49`), the server stopped. */
async function logWithEvents(): Promise<Made> {
  const made = makeTestConfig();
  dirs.push(made.dir);
  const s = await spawn(made);
  const events = trackEvents("torn", 50);
  for (let i = 0; i < events.length; i += 10) {
    await sendBatch(s.url, made.keys.server, events.slice(i, i + 10));
  }
  await stop(s);
  return made;
}

function ids(prefix: string, count: number) {
  return Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
}

function verify(made: Made) {
  return runCli(["log", "verify", "--config", made.configFile]);
}

/** Byte offsets of each record's header in a segment (16-byte headers, length at +4). */
function recordOffsets(path: string): number[] {
  const buf = readFileSync(path);
  const offsets: number[] = [];
  for (
    let at = 0;
    at + 16 <= buf.byteLength && buf[at] === 0xf5;
    at += 16 + buf.readUInt32LE(at + 4)
  ) {
    offsets.push(at);
  }
  return offsets;
}

const damages: { name: string; damage: (path: string, size: number) => void; kept: number }[] = [
  { name: "last record cut short by 5 bytes", damage: (p, n) => truncateSync(p, n - 5), kept: 49 },
  {
    name: "last record cut inside its header",
    damage: (p) => truncateSync(p, recordOffsets(p).at(-1)! + 7),
    kept: 49,
  },
  {
    name: "garbage bytes appended",
    damage: (p) => appendFileSync(p, Buffer.alloc(23, 0xff)),
    kept: 50,
  },
];

for (const { name, damage, kept } of damages) {
  test(`torn tail (${name}): truncated with a warning, whole records kept, appends go on`, async () => {
    const made = await logWithEvents();
    const segment = segmentFiles(made.dataDir).at(-1)!;
    const whole = readFileSync(segment.path);
    damage(segment.path, segment.size);
    const damaged = readFileSync(segment.path);

    // Before recovery, verify reports the damage.
    const before = await verify(made);
    expect(before.code).toBe(1);
    expect(before.stderr).toMatch(/segment 1 offset \d+: /);

    const s = await spawn(made);
    expect(s.output()).toMatch(/"level":40[^\n]*"msg":"event log: torn or corrupt tail truncated"/);
    expect(await tailIds(made)).toEqual(ids("torn", kept));
    // The cut bytes are kept aside, not destroyed.
    const cutAt = readFileSync(segment.path).byteLength;
    const quarantined = readFileSync(
      join(made.dataDir, "log", "quarantine", `${basename(segment.path)}.${cutAt}.bin`),
    );
    expect(Buffer.compare(quarantined, damaged.subarray(cutAt))).toBe(0);
    expect(cutAt).toBeLessThanOrEqual(whole.byteLength);
    expect((await verify(made)).code).toBe(0);

    await sendBatch(s.url, made.keys.server, trackEvents("after", 5));
    await stop(s);
    expect(await tailIds(made)).toEqual([...ids("torn", kept), ...ids("after", 5)]);
    const after = await verify(made);
    expect(after.code).toBe(0);
    expect(after.stdout).toContain(`${kept + 5} record(s)`);

    // Recovered once: the next start finds nothing to truncate.
    const again = await spawn(made);
    expect(again.output()).not.toContain("tail truncated");
    await stop(again);
  }, 60_000);
}

// A zero-filled tail is what a preallocated segment looks like past its last record:
// the end of the data, not damage.
test("zero bytes after the last record: not damage, nothing truncated, appends go on", async () => {
  const made = await logWithEvents();
  const { path } = segmentFiles(made.dataDir).at(-1)!;
  appendFileSync(path, Buffer.alloc(4096));
  expect((await verify(made)).code).toBe(0);
  const s = await spawn(made);
  expect(s.output()).not.toContain("tail truncated");
  expect(s.output()).not.toContain("corrupt");
  expect(await tailIds(made)).toEqual(ids("torn", 50));
  await sendBatch(s.url, made.keys.server, trackEvents("after", 5));
  await stop(s);
  expect(await tailIds(made)).toEqual([...ids("torn", 50), ...ids("after", 5)]);
  expect((await verify(made)).code).toBe(0);
}, 60_000);

test("log verify exits non-zero on a flipped byte inside a middle record", async () => {
  const made = await logWithEvents();
  expect((await verify(made)).code).toBe(0);
  const { path } = segmentFiles(made.dataDir).at(-1)!;
  const offsets = recordOffsets(path);
  expect(offsets).toHaveLength(50);
  const buf = readFileSync(path);
  const at = offsets[20]! + 16 + 10; // inside the payload of the 21st record
  buf[at]! ^= 0x04;
  writeFileSync(path, buf);

  const res = await verify(made);
  expect(res.code).toBe(1);
  expect(res.stderr).toContain(`segment 1 offset ${offsets[20]}: checksum mismatch`);
  expect(res.stdout).toContain("1 bad");
  // The corrupt record is never served; every other one is.
  expect(await tailIds(made)).toEqual(ids("torn", 50).filter((id) => id !== "torn-20"));
}, 60_000);
