import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { join } from "node:path";
import { cleanedAfterEach, postBatch, trackEvents } from "../support/process.ts";
import { makeTestConfig } from "../support/server.ts";

// A storage fault is never silent: when dedup keys cannot be written, /ready says so and
// the log says why; events are still accepted (the log holds them) and the keys are
// written once the fault is gone.

const { dirs, spawn } = cleanedAfterEach();

async function readyStatus(url: string) {
  return (await fetch(`${url}/ready`)).status;
}

async function waitFor(what: () => Promise<boolean>, ms: number) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await what()) return true;
    await Bun.sleep(100);
  }
  return false;
}

test("dedup.db locked by another process: /ready is 503 and the log names it, then all recovers", async () => {
  const made = makeTestConfig();
  dirs.push(made.dir);
  const server = await spawn(made.configFile);
  expect(await readyStatus(server.url)).toBe(200);
  const other = new Database(join(made.dataDir, "dedup.db"));
  try {
    other.exec("BEGIN EXCLUSIVE");
    const events = trackEvents("locked", 5);
    expect((await postBatch(server.url, made.keys.server, events)).status).toBe(200);
    expect(await waitFor(async () => (await readyStatus(server.url)) === 503, 40_000)).toBe(true);
    expect(server.output()).toContain("dedup keys could not be written");
    // Still a duplicate, from memory.
    const again = await postBatch(server.url, made.keys.server, events);
    expect(await again.json()).toMatchObject({ accepted: 0, duplicates: 5 });
    other.exec("ROLLBACK");
  } finally {
    other.close();
  }
  expect(await waitFor(async () => (await readyStatus(server.url)) === 200, 40_000)).toBe(true);
}, 90_000);
