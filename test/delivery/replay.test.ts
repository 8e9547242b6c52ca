import { Database } from "bun:sqlite";
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { SQL } from "bun";
import { progressLine } from "../../src/cli/progress.ts";
import { formatSummary } from "../../src/cli/replay.ts";
import { ADMIN, startAdminServer } from "../admin/support.ts";
import { BUN, MAIN, runCli, type TestServer } from "../support/server.ts";
import { type Receiver, startReceiver } from "./receiver.ts";
import { caughtUp, until } from "./support.ts";

// SPEC 8: replay re-sends stored events in a range through the connection's functions
// to its destination, without moving its offset; idempotent destinations make it safe.

const PG_URL = process.env.SLUICE_TEST_PG ?? "postgres://postgres:postgres@127.0.0.1:5432/test";
let sql: SQL;
beforeAll(() => {
  sql = new SQL(PG_URL);
});
afterAll(() => sql.close());

let s: TestServer | undefined;
let r: Receiver | undefined;
afterEach(async () => {
  await s?.cleanup();
  r?.stop();
  s = undefined;
  r = undefined;
});

async function send(s: TestServer, ids: string[]) {
  const batch = ids.map((messageId) => ({ type: "track", event: "e", userId: "u", messageId }));
  const res = await s.post("/v1/batch", { batch }, { "x-write-key": s.keys.server });
  expect(res.status).toBe(200);
}

const range = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
const cli = (s: TestServer, ...args: string[]) => runCli([...args, "--config", s.configFile]);

function savedOffset(dataDir: string, id: string) {
  const db = new Database(join(dataDir, "state.db"), { readonly: true });
  try {
    return db
      .query("SELECT segment, offset FROM connection_offsets WHERE connection_id = ?")
      .get(id);
  } finally {
    db.close();
  }
}

test("a replay into PostgreSQL adds no duplicate rows and leaves the connection's offset alone", async () => {
  const table = `events_${Math.random().toString(36).slice(2, 10)}`;
  s = await startAdminServer({
    config: {
      connections: [
        {
          id: "con_pg",
          source: "web",
          destination: { type: "postgres", url: PG_URL, table, batchSize: 10, maxWaitMs: 20 },
        },
      ],
    },
  });
  try {
    const before = new Date(Date.now() - 1000).toISOString();
    await send(s, range("pg", 25));
    await send(s, range("pg-more", 5));
    const count = async () => (await sql`SELECT count(*)::int AS n FROM ${sql(table)}`)[0].n;
    await until(async () => (await count().catch(() => 0)) === 30, 20_000, "30 rows");
    await caughtUp(s.url, "con_pg");
    const offset = savedOffset(s.dataDir, "con_pg");

    const out = await cli(s, "replay", "--connection", "con_pg", "--from", before);
    expect(out.stderr).toBe(""); // no progress bar off a terminal
    expect(out.stdout).toMatch(
      /replayed 30 of 30 event\(s\) through con_pg in [\d.]+ s \(\d+\/s\): 30 delivered, 0 dropped by functions, 0 failed/,
    );
    expect(out.code).toBe(0);
    expect(await count()).toBe(30);
    const ids = await sql`SELECT message_id FROM ${sql(table)} ORDER BY message_id`;
    expect(new Set(ids.map((r: { message_id: string }) => r.message_id)).size).toBe(30);
    expect(savedOffset(s.dataDir, "con_pg")).toEqual(offset);

    // The admin API starts the same replay on the server; the log says when it ends.
    const res = await fetch(`${s.url}/admin/api/connections/con_pg/replay`, {
      method: "POST",
      headers: ADMIN,
      body: JSON.stringify({ from: before }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, events: 30 });
    await until(
      async () => (await Bun.file(s!.logFile).text()).includes('"msg":"replay finished"'),
      20_000,
      "the server's replay",
    );
    expect(await count()).toBe(30);
  } finally {
    await sql`DROP TABLE IF EXISTS ${sql(table)}`;
  }
}, 60_000);

test("a webhook replay sends the same Idempotency-Keys; a time or position range picks its events", async () => {
  r = startReceiver();
  s = await startAdminServer({
    config: {
      connections: [
        {
          id: "con_hook",
          source: "web",
          destination: { type: "webhook", url: r.url, batchSize: 10, maxWaitMs: 1000 },
        },
      ],
    },
  });
  await send(s, range("a", 10));
  await r.waitFor(10);
  await Bun.sleep(5); // a time strictly between the two requests
  const between = new Date().toISOString();
  await Bun.sleep(5);
  await send(s, range("b", 10));
  await r.waitFor(20);
  await caughtUp(s.url, "con_hook");
  const original = r.batches.map((b) => b.key);
  expect(original).toHaveLength(2);

  // Everything, from the first position of the log: the receiver drops both as repeats.
  const all = await cli(s, "replay", "--connection", "con_hook", "--from", "1:0");
  expect(all.code).toBe(0);
  expect(all.stdout).toContain("replayed 20 of 20 event(s)");
  expect(r.batches.slice(2).map((b) => b.key)).toEqual(original);
  expect(r.accepted()).toHaveLength(20);

  // [from, to) by time: only the first request's events.
  const first = await cli(
    s,
    "replay",
    "--connection",
    "con_hook",
    "--from",
    "2000-01-01",
    "--to",
    between,
  );
  expect(first.stdout).toContain("replayed 10 of 10 event(s)");
  expect(r.batches.at(-1)!.events.map((e) => e.messageId)).toEqual(range("a", 10));
  expect(r.batches.at(-1)!.key).toBe(original[0]!);
  expect(r.accepted()).toHaveLength(20); // still no event twice, by key

  // From the position the inspector shows for b-0 to the one it shows for b-5: b-0…b-4.
  const positionOf = async (messageId: string) =>
    until(async () => {
      const res = await fetch(`${s!.url}/admin/api/events/web/${messageId}`, { headers: ADMIN });
      return res.status === 200
        ? ((await res.json()) as { path: { position: string } }).path.position
        : undefined;
    });
  const [p0, p5] = [await positionOf("b-0"), await positionOf("b-5")];
  const part = await cli(s, "replay", "--connection", "con_hook", "--from", p0, "--to", p5);
  expect(part.stdout).toContain("replayed 5 of 5 event(s)");
  expect(r.batches.at(-1)!.events.map((e) => e.messageId)).toEqual(range("b", 5));
  expect(r.repeatedKeys().sort()).toEqual([...original].sort() as string[]);
}, 60_000);

test("replay: a range that holds nothing says so (exit 0); unknown connection exit 2; bad times exit 2", async () => {
  r = startReceiver();
  s = await startAdminServer({
    config: {
      connections: [
        { id: "con_hook", source: "web", destination: { type: "webhook", url: r.url } },
      ],
    },
  });
  await send(s, ["x-1"]);
  const empty = await cli(
    s,
    "replay",
    "--connection",
    "con_hook",
    "--from",
    "2001-01-01",
    "--to",
    "2001-01-02",
  );
  expect(empty.code).toBe(0);
  expect(empty.stdout).toContain("no events of source web in that range: nothing to replay");
  const unknown = await cli(s, "replay", "--connection", "con_nope", "--from", "2001-01-01");
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toContain("unknown connection con_nope");
  expect(unknown.stderr).toContain("con_hook");
  const bad = await cli(s, "replay", "--connection", "con_hook", "--from", "yesterday");
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain("--from: expected an ISO-8601 time");
  const backwards = await cli(
    s,
    "replay",
    "--connection",
    "con_hook",
    "--from",
    "2001-01-02",
    "--to",
    "2001-01-01",
  );
  expect(backwards.code).toBe(2);
  expect(backwards.stderr).toContain("--to must be after --from");
  await r.waitFor(1);
  expect(r.delivered().map((e) => e.messageId)).toEqual(["x-1"]);
}, 60_000);

test("on a terminal the replay draws a progress bar with rate and ETA, then the summary", async () => {
  r = startReceiver();
  s = await startAdminServer({
    config: {
      connections: [
        { id: "con_hook", source: "web", destination: { type: "webhook", url: r.url } },
      ],
    },
  });
  await send(s, range("t", 30));
  await r.waitFor(30);
  // `script` runs the CLI on a pseudo-terminal, as a person would.
  const command = [
    BUN,
    MAIN,
    "replay",
    "--connection",
    "con_hook",
    "--from",
    "2000-01-01",
    "--config",
    s.configFile,
  ]
    .map((a) => `'${a}'`)
    .join(" ");
  const proc = Bun.spawn(["script", "-qec", command, "/dev/null"], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  expect(code).toBe(0);
  expect(out).toMatch(/\[█+\] 100% {2}30\/30 events {2}[\d,]+\/s {2}ETA \d+s/);
  expect(out).toContain("replayed 30 of 30 event(s) through con_hook");
}, 60_000);

test("progress and summary lines", () => {
  expect(progressLine(250, 1000, 5000, 8)).toBe("[██░░░░░░] 25%  250/1,000 events  50/s  ETA 15s");
  expect(progressLine(0, 1000, 0, 4)).toBe("[░░░░] 0%  0/1,000 events  0/s  ETA …");
  expect(
    formatSummary("con_x", {
      replayId: "r",
      total: 10,
      done: 10,
      delivered: 8,
      dropped: 1,
      failed: 1,
      elapsedMs: 2000,
      failures: [],
    }),
  ).toBe(
    "replayed 10 of 10 event(s) through con_x in 2.0 s (5/s): 8 delivered, 1 dropped by functions, 1 failed",
  );
});
