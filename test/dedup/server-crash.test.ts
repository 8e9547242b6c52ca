import { expect, test } from "bun:test";
import { cleanedAfterEach, exitCode, postBatch } from "../support/process.ts";
import { makeTestConfig, storedEvents } from "../support/server.ts";

// SPEC 5 through the dedup store: a real server killed (-9) while clients write batches
// with random UUIDv4 messageIds; after each restart the clients send everything again,
// acknowledged or not. Every event ends up stored exactly once, also those acknowledged
// rounds before (keys from before the crash, on disk or rebuilt from the log tail).

const { dirs, spawn } = cleanedAfterEach();
const CLIENTS = 4;
const BATCH = 200;
const ROUNDS = 3;

function events(n: number): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => ({
    type: "track",
    event: "Crash Tested",
    userId: `u${i % 5}`,
    messageId: crypto.randomUUID(),
  }));
}

test("kill -9 while writing, then every batch sent again: each event stored once", async () => {
  const made = makeTestConfig({
    web: { rateLimit: { eventsPerSecond: 1_000_000, burst: 1_000_000 } },
  });
  dirs.push(made.dir);
  const sent: Record<string, unknown>[][] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const server = await spawn(made.configFile);
    // Everything sent before, acknowledged or not, comes back as all duplicates or stored.
    for (const batch of sent) {
      const res = await postBatch(server.url, made.keys.server, batch);
      const body = (await res.json()) as { accepted: number; duplicates: number };
      expect({ status: res.status, sum: body.accepted + body.duplicates }).toEqual({
        status: 200,
        sum: batch.length,
      });
    }
    let acks = 0;
    let killed = false;
    const client = async () => {
      while (!killed) {
        const batch = events(BATCH);
        sent.push(batch);
        try {
          const res = await postBatch(server.url, made.keys.server, batch);
          if (res.status === 200) acks++;
        } catch {
          // the kill
        }
      }
    };
    const killAfter = 10 + Math.floor(Math.random() * 30);
    const killer = async () => {
      while (acks < killAfter) await Bun.sleep(1);
      await Bun.sleep(Math.random() * 30);
      killed = true;
      server.proc.kill(9);
    };
    await Promise.all([killer(), ...Array.from({ length: CLIENTS }, client)]);
    await exitCode(server.proc);
  }

  const last = await spawn(made.configFile);
  for (const batch of sent) {
    const res = await postBatch(last.url, made.keys.server, batch);
    expect(res.status).toBe(200);
  }
  // Sent again once more: now all of it is a duplicate.
  for (const batch of sent.slice(0, 20)) {
    const body = (await (await postBatch(last.url, made.keys.server, batch)).json()) as {
      duplicates: number;
    };
    expect(body.duplicates).toBe(batch.length);
  }
  last.proc.kill("SIGTERM");
  expect(await exitCode(last.proc)).toBe(0);

  const counts = new Map<string, number>();
  for (const e of await storedEvents(made.dataDir)) {
    const id = String(e.messageId);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  const ids = sent.flat().map((e) => String(e.messageId));
  expect(ids.filter((id) => counts.get(id) !== 1)).toEqual([]);
  expect(counts.size).toBe(ids.length);
}, 180_000);
