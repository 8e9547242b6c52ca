import { afterEach, expect, test } from "bun:test";
import { ADMIN, adminGet, startAdminServer } from "../admin/support.ts";
import type { TestServer } from "../support/server.ts";
import { type Receiver, startReceiver } from "./receiver.ts";
import { deadLettersOf, until, waitForDeadLetters } from "./support.ts";

// SPEC 8 / 11: the admin API's connections are the delivery engine's own state, and
// pause, resume and redrive act on it; a pause outlives a restart.

let s: TestServer | undefined;
let r: Receiver | undefined;
afterEach(async () => {
  await s?.cleanup();
  r?.stop();
  s = undefined;
  r = undefined;
});

const hook = (url: string) => ({
  connections: [
    {
      id: "con_hook",
      source: "web",
      destination: { type: "webhook", url, maxWaitMs: 20, retryBaseMs: 20 },
    },
  ],
});

async function send(s: TestServer, ids: string[]) {
  const batch = ids.map((messageId) => ({ type: "track", event: "e", userId: "u", messageId }));
  const res = await s.post("/v1/batch", { batch }, { "x-write-key": s.keys.server });
  expect(res.status).toBe(200);
}

const post = (s: TestServer, path: string) =>
  fetch(`${s.url}/admin/api/connections/${path}`, { method: "POST", headers: ADMIN });

async function connection(s: TestServer): Promise<Record<string, unknown>> {
  const res = await adminGet(s, "/admin/api/connections");
  expect(res.status).toBe(200);
  const { connections } = (await res.json()) as { connections: Record<string, unknown>[] };
  return connections[0]!;
}

test("pause holds delivery back (also across a restart); resume delivers what waited, once", async () => {
  r = startReceiver();
  s = await startAdminServer({ config: hook(r.url) });
  await send(s, ["p-1"]);
  await r.waitFor(1);
  expect(await connection(s)).toMatchObject({ state: "running", attempts: 0, lastError: null });
  expect((await connection(s)).lastSuccessAt).toBeString();

  expect((await post(s, "con_hook/pause")).status).toBe(200);
  expect(await connection(s)).toMatchObject({
    state: "paused",
    actions: { pause: false, resume: true },
  });
  await send(s, ["p-2", "p-3"]);
  await until(async () => ((await connection(s!)).lag as { events: number }).events === 2);
  await s.restart();
  expect((await connection(s)).state).toBe("paused");
  await send(s, ["p-4"]);
  await until(async () => ((await connection(s!)).lag as { events: number }).events === 3);
  expect(r.delivered().map((e) => e.messageId)).toEqual(["p-1"]);

  expect((await post(s, "con_hook/resume")).status).toBe(200);
  await r.waitFor(4);
  expect(r.delivered().map((e) => e.messageId)).toEqual(["p-1", "p-2", "p-3", "p-4"]);
  expect((await connection(s)).state).toBe("running");
  const metrics = await (await fetch(`${s.url}/metrics`)).text();
  expect(metrics).toContain('sluice_connection_state{connection="con_hook",state="running"} 1');
  const lastSuccess =
    /^sluice_connection_last_success_timestamp_seconds\{connection="con_hook"\} (\S+)$/m.exec(
      metrics,
    );
  expect(Number(lastSuccess?.[1]) * 1000).toBeCloseTo(
    Date.parse((await connection(s)).lastSuccessAt as string),
    -3,
  );
});

test("the admin API's redrive sends the dead letters once and shows the state as it goes", async () => {
  r = startReceiver();
  let status: number | undefined = 422;
  r.fail = () => status;
  s = await startAdminServer({ config: hook(r.url) });
  await send(s, ["x-1", "x-2"]);
  const [letter] = await waitForDeadLetters(s.dataDir, "con_hook", 1);
  const failing = await connection(s);
  expect(failing).toMatchObject({ state: "failing", deadLetters: 2, attempts: 1 });
  expect((failing.lastError as { message: string }).message).toBe("HTTP 422");

  status = undefined;
  const res = await post(s, "con_hook/redrive");
  expect(res.status).toBe(200);
  expect(await res.json()).toMatchObject({ ok: true, delivered: 1, events: 2, failed: [] });
  expect(await deadLettersOf(s.dataDir, "con_hook")).toEqual([]);
  expect(r.repeatedKeys()).toEqual([]);
  expect(r.accepted().map((e) => e.messageId)).toEqual(["x-1", "x-2"]);
  expect(await connection(s)).toMatchObject({ deadLetters: 0, state: "running", attempts: 0 });
  expect(letter!.id).toBeString();
});

interface PathView {
  status: string;
  attempts: { ok: boolean; status?: number; error?: string; via?: string }[];
  deadLetter: { reason: string; attempts: number } | null;
  replays: { status: string }[];
}

async function pathOf(s: TestServer, messageId: string): Promise<PathView> {
  const res = await adminGet(s, `/admin/api/events/web/${messageId}`);
  expect(res.status).toBe(200);
  const body = (await res.json()) as {
    path: { connections: (PathView & { connectionId: string })[] };
  };
  const [con] = body.path.connections;
  expect(con!.connectionId).toBe("con_hook");
  return con!;
}

test("an event's path: refused and dead-lettered, then redriven, then replayed", async () => {
  r = startReceiver();
  let status: number | undefined = 422;
  r.fail = () => status;
  s = await startAdminServer({ config: hook(r.url) });
  const before = new Date(Date.now() - 1000).toISOString();
  await send(s, ["t-1"]);
  await waitForDeadLetters(s.dataDir, "con_hook", 1);
  const dead = await until(async () => {
    const p = await pathOf(s!, "t-1");
    return p.status === "dead_letter" ? p : null;
  });
  expect(dead.attempts).toEqual([
    expect.objectContaining({ ok: false, status: 422, error: expect.stringContaining("HTTP 422") }),
  ]);
  expect(dead.deadLetter).toMatchObject({
    reason: expect.stringContaining("HTTP 422"),
    attempts: 1,
  });
  expect(dead.replays).toEqual([]);

  status = undefined;
  expect((await post(s, "con_hook/redrive")).status).toBe(200);
  const redriven = await until(async () => {
    const p = await pathOf(s!, "t-1");
    return p.status === "delivered" ? p : null;
  });
  expect(redriven.attempts.map((a) => [a.ok, a.via])).toEqual([
    [false, undefined],
    [true, "redrive"],
  ]);
  // The dead letter stays in the story, though it is gone from the store.
  expect(redriven.deadLetter).toMatchObject({
    reason: expect.stringContaining("HTTP 422"),
    attempts: 1,
  });

  const replay = await fetch(`${s.url}/admin/api/connections/con_hook/replay`, {
    method: "POST",
    headers: { ...ADMIN, "content-type": "application/json" },
    body: JSON.stringify({ from: before }),
  });
  expect(replay.status).toBe(200);
  const replayed = await until(async () => {
    const p = await pathOf(s!, "t-1");
    return p.replays.length > 0 ? p : null;
  });
  expect(replayed.replays).toEqual([expect.objectContaining({ status: "delivered" })]);
  expect(replayed.status).toBe("delivered");
  // Redrive and replay carried the key of the first attempt: the receiver keeps it once.
  expect(new Set(r.batches.map((b) => b.key)).size).toBe(1);
  expect(r.accepted().map((e) => e.messageId)).toEqual(["t-1"]);
});
