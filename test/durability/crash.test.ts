import { afterAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { exitCode, postBatch, trackEvents } from "../support/process.ts";
import {
  makeTestConfig,
  runCli,
  type SpawnedServer,
  spawnServer,
  storedEvents,
} from "../support/server.ts";
import { waitFor } from "../support/wait.ts";

// SPEC 5: no acknowledged event is ever lost on kill -9, and a client that retries
// everything it did not see acknowledged ends with each event stored exactly once.

const CLIENTS = 8;
const BATCH = 50;
const MAX_BATCHES_PER_CLIENT = 40;
/** Per round: the server is killed this many ms after that many requests were acknowledged. */
const ROUNDS = [
  { acks: 3, delayMs: 0 },
  { acks: 10, delayMs: 3 },
  { acks: 20, delayMs: 11 },
  { acks: 30, delayMs: 23 },
];

interface SentRequest {
  events: Record<string, unknown>[];
  acked: boolean;
}

const made = makeTestConfig({
  // Small segments, so that crashes also land around segment rotation.
  config: { log: { segmentBytes: 64 * 1024 } },
  web: { rateLimit: { eventsPerSecond: 1_000_000, burst: 1_000_000 } },
});
let server: SpawnedServer | undefined;
afterAll(async () => {
  server?.proc.kill(9);
  // Gone only once exited: until then it may still write into the dir being removed.
  await server?.proc.exited;
  rmSync(made.dir, { recursive: true, force: true });
});

/**
 * Concurrent clients send batches until the server dies. A watcher kills the server
 * (kill -9) a little while after `killAfter` acks, independently of the clients, so the
 * kill lands anywhere in a request's life: before its write, between write and
 * fdatasync, or after the flush but before the response.
 */
async function loadAndKill(s: SpawnedServer, round: number, killAfter: number, delayMs: number) {
  const sent: SentRequest[] = [];
  const failedBeforeKill: string[] = [];
  let acks = 0;
  let killed = false;
  const client = async (c: number) => {
    for (let b = 0; b < MAX_BATCHES_PER_CLIENT; b++) {
      const req: SentRequest = {
        events: trackEvents(`r${round}-c${c}-b${b}`, BATCH),
        acked: false,
      };
      sent.push(req);
      try {
        const res = await postBatch(s.url, made.keys.server, req.events);
        const body = (await res.json()) as { accepted: number; duplicates: number };
        if (res.status === 200) {
          expect(body.accepted + body.duplicates).toBe(BATCH);
          req.acked = true;
          acks++;
        } else if (!killed) {
          failedBeforeKill.push(`${res.status} ${JSON.stringify(body)}`);
        }
      } catch (err) {
        if (!killed) failedBeforeKill.push(String(err));
      }
      if (killed && !req.acked) return;
    }
  };
  let clientsDone = false;
  const clients = Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c))).finally(() => {
    clientsDone = true;
  });
  const killer = async () => {
    await waitFor(() => acks >= killAfter || clientsDone, { intervalMs: 1, timeoutMs: 60_000 });
    // The kill lands a random moment later: when it strikes is what this test varies.
    await Bun.sleep(delayMs);
    killed = true;
    s.proc.kill(9);
  };
  await Promise.all([killer(), clients]);
  expect(failedBeforeKill).toEqual([]);
  expect(killed).toBe(true);
  await exitCode(s.proc);
  expect(s.proc.signalCode).toBe("SIGKILL");
  return sent;
}

/** Retries a request until it is acknowledged, as a client library would. */
async function retryUntilAcked(url: string, req: SentRequest) {
  await waitFor(
    async () => {
      try {
        const res = await postBatch(url, made.keys.server, req.events);
        const body = (await res.json()) as { accepted: number; duplicates: number };
        return res.status === 200 && body.accepted + body.duplicates === BATCH;
      } catch {
        return false;
      }
    },
    { intervalMs: 50, what: `request ${String(req.events[0]?.messageId)} acknowledged` },
  );
  req.acked = true;
}

function countByMessageId(events: Record<string, unknown>[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of events) {
    const id = String(e.messageId);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

test("kill -9 under concurrent load: acked events survive, retries store each event once", async () => {
  const allSent: SentRequest[] = [];
  server = await spawnServer(made.configFile);
  for (const [round, { acks, delayMs }] of ROUNDS.entries()) {
    const sent = await loadAndKill(server, round, acks, delayMs);
    allSent.push(...sent);
    server = await spawnServer(made.configFile);

    // Every acknowledged event is in the log, and nothing is in it twice.
    const afterCrash = countByMessageId(await storedEvents(made.dataDir));
    const ackedIds = sent.filter((r) => r.acked).flatMap((r) => r.events.map((e) => e.messageId));
    expect(ackedIds.length).toBeGreaterThanOrEqual(acks * BATCH);
    expect(ackedIds.filter((id) => !afterCrash.has(String(id)))).toEqual([]);
    expect([...afterCrash].filter(([, n]) => n > 1)).toEqual([]);

    // The client retries every request it did not see acknowledged, with the same ids.
    const unacked = sent.filter((r) => !r.acked);
    expect(unacked.length).toBeGreaterThan(0);
    await Promise.all(unacked.map((r) => retryUntilAcked(server!.url, r)));

    const stored = await storedEvents(made.dataDir);
    const counts = countByMessageId(stored);
    const sentIds = allSent.flatMap((r) => r.events.map((e) => String(e.messageId)));
    expect(sentIds.filter((id) => counts.get(id) !== 1)).toEqual([]);
    expect(stored).toHaveLength(sentIds.length);
    for (const e of stored) expect(e).toMatchObject({ sourceId: "web", keyId: "wk_server" });
  }

  server.proc.kill("SIGTERM");
  expect(await exitCode(server.proc)).toBe(0);
  const verify = await runCli(["log", "verify", "--config", made.configFile]);
  expect(verify.stderr).toBe("");
  expect(verify.code).toBe(0);
  expect(verify.stdout).toMatch(/ok$/m);
}, 90_000);
