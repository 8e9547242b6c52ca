import { expect, test } from "bun:test";
import {
  cleanedAfterEach,
  exitCode,
  postBatch,
  segmentFiles,
  sendBatch,
  trackEvents,
} from "../support/process.ts";
import { makeTestConfig, runCli } from "../support/server.ts";

// SPEC 5: segments rotate by size; records are read back in order across segments.

const SEGMENT_BYTES = 4096;
const { dirs, spawn } = cleanedAfterEach();

function setup() {
  const made = makeTestConfig({ config: { log: { segmentBytes: SEGMENT_BYTES } } });
  dirs.push(made.dir);
  return made;
}

async function tailIds(configFile: string, ...args: string[]): Promise<string[]> {
  const res = await runCli(["log", "tail", ...args, "--config", configFile]);
  expect(res.code).toBe(0);
  return res.stdout
    .trimEnd()
    .split("\n")
    .map((line) => String((JSON.parse(line) as { messageId: string }).messageId));
}

const ids = (prefix: string, count: number) =>
  Array.from({ length: count }, (_, i) => `${prefix}-${i}`);

test("many events fill several segments, all read back in order", async () => {
  const made = setup();
  const s = await spawn(made.configFile);
  const events = trackEvents("rot", 300);
  // Sequential batches of mixed sizes, and some single events.
  for (let i = 0; i < 200; ) {
    const n = 1 + (i % 23);
    await sendBatch(s.url, made.keys.server, events.slice(i, i + n));
    i += n;
  }
  for (const e of events.slice(200)) {
    const res = await fetch(`${s.url}/v1/track`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-write-key": made.keys.server },
      body: JSON.stringify(e),
    });
    expect(res.status).toBe(200);
  }

  const segments = segmentFiles(made.dataDir);
  expect(segments.length).toBeGreaterThanOrEqual(10);
  // Every segment but the one being written was filled to the rotation size.
  for (const seg of segments.slice(0, -1)) expect(seg.size).toBeGreaterThanOrEqual(SEGMENT_BYTES);
  expect(await tailIds(made.configFile, "--from-start")).toEqual(ids("rot", 300));
  expect(await tailIds(made.configFile)).toEqual(ids("rot", 300).slice(-10));

  // After a restart the log goes on where it was, still in order.
  s.proc.kill("SIGTERM");
  expect(await exitCode(s.proc)).toBe(0);
  const again = await spawn(made.configFile);
  const more = trackEvents("more", 40);
  for (let i = 0; i < more.length; i += 10) {
    await sendBatch(again.url, made.keys.server, more.slice(i, i + 10));
  }
  expect(segmentFiles(made.dataDir).length).toBeGreaterThan(segments.length);
  expect(await tailIds(made.configFile, "--from-start")).toEqual([
    ...ids("rot", 300),
    ...ids("more", 40),
  ]);

  const verify = await runCli(["log", "verify", "--config", made.configFile]);
  expect(verify.code).toBe(0);
  expect(verify.stdout).toStartWith(
    `${segmentFiles(made.dataDir).length} segment(s), 340 record(s)`,
  );
}, 20_000);

test("dedup keys are rebuilt across segment boundaries after kill -9", async () => {
  const made = setup();
  const s = await spawn(made.configFile);
  const events = trackEvents("seg-dedup", 120);
  for (let i = 0; i < events.length; i += 10) {
    await sendBatch(s.url, made.keys.server, events.slice(i, i + 10));
  }
  s.proc.kill(9);
  await exitCode(s.proc);
  expect(segmentFiles(made.dataDir).length).toBeGreaterThan(3);

  const again = await spawn(made.configFile);
  const res = await postBatch(again.url, made.keys.server, events);
  expect(await res.json()).toMatchObject({ received: 120, accepted: 0, duplicates: 120 });
  expect(await tailIds(made.configFile, "--from-start")).toEqual(ids("seg-dedup", 120));
}, 20_000);
