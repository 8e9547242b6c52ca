import { expect, test } from "bun:test";
import { connect, type Socket } from "node:net";
import { cleanedAfterEach, exitCode, postBatch, trackEvents } from "../support/process.ts";
import { makeTestConfig, storedEvents } from "../support/server.ts";
import { waitFor } from "../support/wait.ts";

// SPEC 10: SIGTERM / SIGINT stop accepting, finish in-flight requests, flush, close;
// exit 0. The data dir is free again afterwards.

const { dirs, spawn } = cleanedAfterEach();

function setup() {
  const made = makeTestConfig({
    web: { rateLimit: { eventsPerSecond: 1_000_000, burst: 1_000_000 } },
  });
  dirs.push(made.dir);
  return made;
}

/** A raw HTTP/1.1 connection, so a request body can be sent in parts. */
async function rawConnection(port: number) {
  const socket: Socket = connect(port, "127.0.0.1");
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  let data = "";
  socket.on("data", (chunk) => {
    data += chunk.toString();
  });
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  return { socket, closed, response: () => data };
}

test("SIGTERM lets a request in flight finish with 200, stores it, exits 0 and frees the dir", async () => {
  const made = setup();
  const s = await spawn(made.configFile);
  const body = JSON.stringify({ event: "Slow Upload", userId: "u1", messageId: "in-flight-1" });
  const conn = await rawConnection(s.port);
  conn.socket.write(
    "POST /v1/track HTTP/1.1\r\nHost: sluice\r\nContent-Type: application/json\r\n" +
      `X-Write-Key: ${made.keys.server}\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 12)}`,
  );
  // The server has the headers and is waiting for the body. Nothing outside the server
  // shows that moment, so this one wait stays a sleep; too short, the request would
  // only be refused (and the test fail), never pass wrongly.
  await Bun.sleep(150);

  s.proc.kill("SIGTERM");
  await waitFor(() => s.output().includes('"msg":"shutting down"'), { what: "shutting down" });
  // Still running: it waits for the request it had already started.
  expect(s.proc.exitCode).toBeNull();
  // No new connections while shutting down.
  const refused = await fetch(`${s.url}/health`).then(
    (r) => r.status,
    () => "refused",
  );
  expect(refused).toBe("refused");

  conn.socket.write(body.slice(12));
  // The server answers, then closes the connection because it is stopping.
  await conn.closed;
  expect(conn.response()).toStartWith("HTTP/1.1 200");
  expect(conn.response()).toEndWith('{"ok":true,"success":true}');
  expect(await exitCode(s.proc)).toBe(0);
  expect(s.output()).toMatch(/"signal":"SIGTERM","msg":"shutting down"/);

  const stored = await storedEvents(made.dataDir);
  expect(stored.map((e) => e.messageId)).toEqual(["in-flight-1"]);
  // The lock went with the process: a new server starts on the same data dir.
  const next = await spawn(made.configFile);
  next.proc.kill("SIGTERM");
  expect(await exitCode(next.proc)).toBe(0);
}, 15_000);

test("SIGINT stops the server with exit 0 after flushing, and frees the data dir", async () => {
  const made = setup();
  const s = await spawn(made.configFile);
  const res = await postBatch(s.url, made.keys.server, trackEvents("sigint", 30));
  expect(res.status).toBe(200);
  s.proc.kill("SIGINT");
  expect(await exitCode(s.proc)).toBe(0);
  expect(s.output()).toMatch(/"signal":"SIGINT","msg":"shutting down"/);
  expect(await storedEvents(made.dataDir)).toHaveLength(30);

  const next = await spawn(made.configFile);
  // Its dedup keys were persisted at the stop: the same batch is all duplicates.
  const again = await postBatch(next.url, made.keys.server, trackEvents("sigint", 30));
  expect(await again.json()).toMatchObject({ accepted: 0, duplicates: 30 });
  next.proc.kill("SIGINT");
  expect(await exitCode(next.proc)).toBe(0);
  expect(await storedEvents(made.dataDir)).toHaveLength(30);
}, 15_000);

test("SIGTERM under concurrent load: every acknowledged event is stored, the rest get 503 or no answer", async () => {
  const made = setup();
  const s = await spawn(made.configFile);
  const acked: string[] = [];
  const statuses = new Set<number>();
  let signalled = false;
  const client = async (c: number) => {
    for (let b = 0; b < 60; b++) {
      const events = trackEvents(`term-c${c}-b${b}`, 20);
      try {
        const res = await postBatch(s.url, made.keys.server, events);
        await res.body?.cancel();
        statuses.add(res.status);
        if (res.status === 200) acked.push(...events.map((e) => String(e.messageId)));
        else if (!signalled) throw new Error(`status ${res.status} before SIGTERM`);
        else return;
      } catch (err) {
        if (!signalled) throw err;
        return; // connection closed or refused: the server is gone
      }
    }
  };
  let clientsDone = false;
  const clients = Promise.all(Array.from({ length: 8 }, (_, c) => client(c))).finally(() => {
    clientsDone = true;
  });
  const terminator = async () => {
    await waitFor(() => acked.length >= 200 || clientsDone, { intervalMs: 1, timeoutMs: 60_000 });
    signalled = true;
    s.proc.kill("SIGTERM");
  };
  await Promise.all([terminator(), clients]);
  expect(acked.length).toBeGreaterThanOrEqual(200);
  expect(await exitCode(s.proc)).toBe(0);
  expect([...statuses].filter((st) => st !== 200 && st !== 503)).toEqual([]);

  const stored = new Set((await storedEvents(made.dataDir)).map((e) => String(e.messageId)));
  expect(acked.filter((id) => !stored.has(id))).toEqual([]);
}, 15_000);
