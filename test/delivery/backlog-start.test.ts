import { afterEach, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import pino from "pino";
import { hashAdminToken } from "../../src/admin/token.ts";
import { type Sluice, startSluice } from "../../src/app.ts";
import { parseConfig } from "../../src/config/load.ts";
import { SqliteOffsetStore } from "../../src/delivery/offsets.ts";
import { SqlitePauseStore } from "../../src/delivery/paused.ts";
import { FileEventLog } from "../../src/log/file/file-log.ts";
import { FileLogStream, positionAfter } from "../../src/log/file-stream.ts";
import type { AppendRecord } from "../../src/log/stream.ts";
import { createLogger } from "../../src/logger.ts";
import { openStateDb } from "../../src/state/sqlite.ts";
import { memoryLogger } from "../support/logger.ts";
import { makeTestConfig } from "../support/server.ts";
import { waitFor } from "../support/wait.ts";

// A connection far behind on the file log (a destination down for a day, or the first
// start after an upgrade): its backlog is counted in the background, in slices, so the
// server listens and takes events meanwhile; its lag is unknown until then (absent from
// /metrics, null in the admin API), then right.

const ADMIN_TOKEN = "adm_test:0123456789abcdef0123456789abcdef";
const dirs: string[] = [];
let sluice: Sluice | undefined;
afterEach(async () => {
  await sluice?.stop();
  sluice = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Records of the old log: small payloads (no messageId: dedup's start-up replay skips them). */
const recs = (from: number, count: number, sourceId: string): AppendRecord[] =>
  Array.from({ length: count }, (_, i) => ({
    sourceId,
    type: "track",
    receivedAt: Date.now() - 86_400_000 + from + i,
    payload: `{"n":${from + i}}`,
  }));

test("a backlog of many segments is counted after the server listens: /health and ingest answer meanwhile, then the lag is right", async () => {
  const made = makeTestConfig({
    config: {
      admin: {
        tokens: [{ id: "adm_test", hash: hashAdminToken(ADMIN_TOKEN) }],
        searchIndex: false,
      },
      log: { segmentBytes: 1024 * 1024 },
      connections: [
        {
          id: "con_hook",
          source: "web",
          destination: { type: "webhook", url: "http://127.0.0.1:9/never" },
        },
      ],
    },
  });
  dirs.push(made.dir);
  // The log as a day of an outage left it: many segments, the connection's offset in
  // the middle of an early one, and the connection paused (nothing is delivered).
  const { logger: quiet } = memoryLogger();
  const file = await FileEventLog.open({
    dir: join(made.dataDir, "log"),
    segmentBytes: 1024 * 1024,
    logger: quiet,
  });
  const db = openStateDb(made.dataDir);
  const stream = new FileLogStream(file, new SqliteOffsetStore(db));
  let web = 0;
  let committedAt = "";
  const BATCHES = 40;
  for (let k = 0; k < BATCHES; k++) {
    const cursors = await stream.append([
      ...recs(k * 10_000, 6000, "web"),
      ...recs(k * 10_000 + 6000, 4000, "other"),
    ]);
    // The offset: after the 1500th web record of the third batch (mid-segment).
    if (k === 2) committedAt = cursors[1499]!;
    if (k > 2) web += 6000;
    else if (k === 2) web += 6000 - 1500;
  }
  const committed = positionAfter(committedAt)!;
  expect(committed.offset).toBeGreaterThan(0);
  expect(file.segments().length).toBeGreaterThan(10);
  new SqliteOffsetStore(db).set("con_hook", committed);
  await new SqlitePauseStore(db).set("con_hook", true);
  await stream.close();
  db.close();

  const logger = createLogger("info", pino.destination({ dest: made.logFile, sync: true }));
  sluice = await startSluice(parseConfig(made.config, made.configFile, {}), { logger });
  const url = `http://127.0.0.1:${sluice.port}`;
  const lagEvents = async () => {
    const text = await (await fetch(`${url}/metrics`)).text();
    expect(text).toContain('sluice_connection_state{connection="con_hook",state="paused"} 1');
    const m = /^sluice_connection_lag_events\{connection="con_hook"\} (\S+)$/m.exec(text);
    return m ? Number(m[1]) : null;
  };
  const adminLag = async () => {
    const res = await fetch(`${url}/admin/api/connections`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    const { connections } = (await res.json()) as {
      connections: { id: string; lag: { events: number | null; seconds: number | null } }[];
    };
    return connections.find((c) => c.id === "con_hook")!.lag;
  };

  // Listening, ready and taking events while the backlog is still being counted.
  expect((await fetch(`${url}/health`)).status).toBe(200);
  const batch = Array.from({ length: 5 }, (_, i) => ({
    type: "track",
    event: "e",
    userId: "u",
    messageId: `new-${i}`,
  }));
  const key = made.keys.server;
  const res = await fetch(`${url}/v1/batch`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-write-key": key },
    body: JSON.stringify({ batch }),
  });
  expect(res.status).toBe(200);
  // Unknown, not 0: absent from /metrics, null in the admin API.
  expect(await lagEvents()).toBeNull();
  expect(await adminLag()).toEqual({ events: null, seconds: null });

  // Then counted: the old backlog and the events taken meanwhile.
  await waitFor(async () => (await lagEvents()) === web + 5, {
    timeoutMs: 60_000,
    what: `lag ${web + 5}`,
  });
  const lag = await adminLag();
  expect(lag.events).toBe(web + 5);
  // The oldest is a day old.
  expect(lag.seconds).toBeGreaterThan(86_000);
}, 120_000);
