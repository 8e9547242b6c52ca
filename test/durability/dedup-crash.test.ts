import { expect, test } from "bun:test";
import { cleanedAfterEach, exitCode, postBatch, trackEvents } from "../support/process.ts";
import { makeTestConfig, storedEvents } from "../support/server.ts";

// SPEC 5: a duplicate inside the window is answered like an accepted event and not
// stored again, also when the first copy's dedup key was lost in a crash (the key is
// rebuilt from the log tail on start).

const { dirs, spawn } = cleanedAfterEach();

function track(url: string, key: string, messageId: string) {
  return fetch(`${url}/v1/track`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-write-key": key },
    body: JSON.stringify({ event: "Signed Up", userId: "u1", messageId }),
  });
}

function countOf(events: Record<string, unknown>[], messageId: string) {
  return events.filter((e) => e.messageId === messageId).length;
}

test("an event resent after a kill -9 right after its ack is stored once", async () => {
  const made = makeTestConfig();
  dirs.push(made.dir);
  const first = await spawn(made.configFile);
  const res = await track(first.url, made.keys.server, "once-1");
  expect(res.status).toBe(200);
  // Killed well before the dedup store's periodic write to SQLite.
  first.proc.kill(9);
  await exitCode(first.proc);

  const second = await spawn(made.configFile);
  // The key came back from the log, not from SQLite (the checkpoint had not moved).
  expect(second.output()).toMatch(
    /"keys":1,[^\n]*"msg":"dedup keys rebuilt from the event log tail"/,
  );
  const again = await track(second.url, made.keys.server, "once-1");
  expect(again.status).toBe(200);
  expect(await again.json()).toEqual({ ok: true, success: true });
  // The same id from another source is a different event.
  expect((await track(second.url, made.keys.other, "once-1")).status).toBe(200);

  const stored = await storedEvents(made.dataDir);
  expect(stored.filter((e) => e.sourceId === "web" && e.messageId === "once-1")).toHaveLength(1);
  expect(stored.filter((e) => e.sourceId === "other" && e.messageId === "once-1")).toHaveLength(1);
}, 30_000);

test("a batch resent after a kill -9 is all duplicates, also after a second crash", async () => {
  const made = makeTestConfig();
  dirs.push(made.dir);
  const events = trackEvents("batch-crash", 20);
  const first = await spawn(made.configFile);
  expect((await postBatch(first.url, made.keys.server, events)).status).toBe(200);
  first.proc.kill(9);
  await exitCode(first.proc);

  // Crash again right after start: the rebuilt keys were never persisted either.
  const second = await spawn(made.configFile);
  second.proc.kill(9);
  await exitCode(second.proc);

  const third = await spawn(made.configFile);
  expect(third.output()).toMatch(/"keys":20,[^\n]*"msg":"dedup keys rebuilt/);
  const res = await postBatch(third.url, made.keys.server, events);
  expect(res.status).toBe(200);
  expect(await res.json()).toMatchObject({ received: 20, accepted: 0, duplicates: 20 });

  const stored = await storedEvents(made.dataDir);
  expect(stored).toHaveLength(20);
  for (const e of events) expect(countOf(stored, String(e.messageId))).toBe(1);
}, 30_000);

test("dedup keys persisted at a graceful stop still hold after a restart", async () => {
  const made = makeTestConfig();
  dirs.push(made.dir);
  const first = await spawn(made.configFile);
  expect((await track(first.url, made.keys.server, "graceful-1")).status).toBe(200);
  first.proc.kill("SIGTERM");
  expect(await exitCode(first.proc)).toBe(0);

  const second = await spawn(made.configFile);
  // Persisted with their checkpoint at stop: nothing left to rebuild.
  expect(second.output()).not.toContain("dedup keys rebuilt");
  expect((await track(second.url, made.keys.server, "graceful-1")).status).toBe(200);
  expect(countOf(await storedEvents(made.dataDir), "graceful-1")).toBe(1);
}, 30_000);
