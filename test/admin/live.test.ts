import { afterEach, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import type { TestServer } from "../support/server.ts";
import { ADMIN, attemptWith, openSse, type SseReader, startAdminServer } from "./support.ts";

let server: TestServer | undefined;
const readers: SseReader[] = [];
afterEach(async () => {
  for (const r of readers.splice(0)) r.close();
  await server?.cleanup();
  server = undefined;
});

async function watch(s: TestServer, query = "", headers: Record<string, string> = ADMIN) {
  const reader = await openSse(`${s.url}/admin/api/live${query}`, headers);
  readers.push(reader);
  expect(reader.response.status).toBe(200);
  expect(reader.response.headers.get("content-type")).toStartWith("text/event-stream");
  return reader;
}

const track = (messageId: string, extra: Record<string, unknown> = {}) => ({
  type: "track",
  event: "Signed Up",
  userId: "u1",
  messageId,
  ...extra,
});

describe("GET /admin/api/live", () => {
  test("shows accepted, duplicate and rejected events with reason and field", async () => {
    server = await startAdminServer();
    const live = await watch(server);
    const key = { "x-write-key": server.keys.server };
    expect((await server.post("/v1/track", track("m-1"), key)).status).toBe(200);
    await live.waitFor(attemptWith({ status: "accepted", messageId: "m-1" }));
    expect((await server.post("/v1/track", track("m-1"), key)).status).toBe(200);
    await live.waitFor(attemptWith({ status: "duplicate", messageId: "m-1" }));
    const bad = await server.post("/v1/track", { userId: "u1", messageId: "m-2" }, key);
    expect(bad.status).toBe(400);
    const rejected = await live.waitFor(attemptWith({ status: "rejected", messageId: "m-2" }));
    const a = JSON.parse(rejected.data);
    expect(a.field).toBe("event");
    expect(a.reason).toContain("event");
    expect(a.sourceId).toBe("web");
    expect(a.keyId).toBe("wk_server");
    expect(JSON.parse(a.payload)).toEqual({ userId: "u1", messageId: "m-2", type: "track" });
    // One attempt per event: the 400 that followed is not shown a second time. The
    // stream is in order, so once a later event shows, nothing more of m-2 can come.
    expect((await server.post("/v1/track", track("m-3"), key)).status).toBe(200);
    await live.waitFor(attemptWith({ status: "accepted", messageId: "m-3" }));
    expect(live.attempts().filter((x) => x.messageId === "m-2")).toHaveLength(1);
  });

  test("a batch shows each event, its index when refused, and the request id", async () => {
    server = await startAdminServer();
    const live = await watch(server);
    const res = await server.post(
      "/v1/batch",
      { batch: [track("b-1"), { type: "track", userId: "u", messageId: "b-2" }, track("b-1")] },
      { "x-write-key": server.keys.server },
    );
    expect(res.status).toBe(200);
    const requestId = res.headers.get("x-request-id");
    await live.waitFor(attemptWith({ status: "duplicate", messageId: "b-1" }));
    const refused = await live.waitFor(attemptWith({ status: "rejected", messageId: "b-2" }));
    expect(JSON.parse(refused.data)).toMatchObject({ index: 1, field: "event", requestId });
    expect(
      live
        .attempts()
        .filter((x) => x.messageId === "b-1")
        .map((x) => x.status),
    ).toEqual(["accepted", "duplicate"]);
  });

  test("unauthorized attempts show the key id only, never the secret", async () => {
    server = await startAdminServer();
    const live = await watch(server);
    const secret = "wk_server:not-the-right-secret-at-all";
    const res = await server.post("/v1/track", track("u-1"), { "x-write-key": secret });
    expect(res.status).toBe(401);
    const frame = await live.waitFor(attemptWith({ status: "unauthorized" }));
    const a = JSON.parse(frame.data);
    expect(a).toMatchObject({ keyId: "wk_server", sourceId: "web", route: "/v1/track" });
    const legacy = await server.post("/v1/track", track("u-2"), { "x-write-key": "plainsecret99" });
    expect(legacy.status).toBe(401);
    await live.waitFor((f) => f.event === "attempt" && JSON.parse(f.data).keyId === null);
    const text = live.frames.map((f) => f.data).join("\n");
    expect(text).not.toContain("not-the-right-secret-at-all");
    expect(text).not.toContain("plainsecret99");
  });

  test("request-level refusals (malformed JSON, rate limit) appear with their reason", async () => {
    server = await startAdminServer({ web: { rateLimit: { eventsPerSecond: 0.001, burst: 4 } } });
    const live = await watch(server);
    const key = { "x-write-key": server.keys.server, "content-type": "application/json" };
    const malformed = await fetch(`${server.url}/v1/track`, {
      method: "POST",
      headers: key,
      body: "{not json",
    });
    expect(malformed.status).toBe(400);
    const m = await live.waitFor(attemptWith({ status: "rejected", route: "/v1/track" }));
    expect(JSON.parse(m.data)).toMatchObject({ sourceId: "web", keyId: "wk_server" });
    const three = { batch: [track("r-1"), track("r-2"), track("r-3")] };
    const first = await server.post("/v1/batch", three, { "x-write-key": server.keys.server });
    // One token left: the next batch is read, and refused for its size (a batch meeting
    // an empty bucket would be refused unread, as one event).
    expect(first.status).toBe(200);
    const big = await server.post("/v1/batch", three, { "x-write-key": server.keys.server });
    expect(big.status).toBe(429);
    const limited = await live.waitFor(attemptWith({ status: "rate_limited" }));
    expect(JSON.parse(limited.data)).toMatchObject({ sourceId: "web", keyId: "wk_server" });
    expect(JSON.parse(limited.data).reason).toContain("3 events");
    // A later event (of the other source: this bucket is empty) shows after anything
    // more the 429 could have produced.
    const marker = await server.post("/v1/track", track("after"), {
      "x-write-key": server.keys.other,
    });
    expect(marker.status).toBe(200);
    await live.waitFor(attemptWith({ status: "accepted", messageId: "after" }));
    expect(live.attempts().filter((a) => a.status === "rate_limited")).toHaveLength(1);
  });

  test("filters by source, status and type; bad values are 400 naming the parameter", async () => {
    server = await startAdminServer();
    const onlyOther = await watch(server, "?source=other&status=accepted");
    const tracks = await watch(server, "?type=identify");
    await server.post("/v1/track", track("f-1"), { "x-write-key": server.keys.server });
    await server.post("/v1/track", track("f-2"), { "x-write-key": server.keys.other });
    await server.post(
      "/v1/identify",
      { userId: "u9", messageId: "f-3" },
      {
        "x-write-key": server.keys.other,
      },
    );
    await onlyOther.waitFor(attemptWith({ messageId: "f-3" }));
    await tracks.waitFor(attemptWith({ messageId: "f-3" }));
    expect(onlyOther.attempts().map((a) => a.messageId)).toEqual(["f-2", "f-3"]);
    expect(tracks.attempts().map((a) => a.messageId)).toEqual(["f-3"]);

    const bad = await fetch(`${server.url}/admin/api/live?status=accepted,nope`, {
      headers: ADMIN,
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ parameter: "status" });
    const badId = await fetch(`${server.url}/admin/api/live`, {
      headers: { ...ADMIN, "last-event-id": "x" },
    });
    expect(badId.status).toBe(400);
    expect(((await badId.json()) as { error: string }).error).toContain("Last-Event-ID");
  });

  test("a reconnecting client gets what it missed after Last-Event-ID", async () => {
    server = await startAdminServer();
    const first = await watch(server);
    await server.post("/v1/track", track("l-1"), { "x-write-key": server.keys.server });
    const seen = await first.waitFor(attemptWith({ messageId: "l-1" }));
    await server.post("/v1/track", { userId: "u" }, { "x-write-key": server.keys.server });
    await first.waitFor(attemptWith({ status: "rejected" }));
    first.close();
    const again = await watch(server, "", { ...ADMIN, "last-event-id": seen.id! });
    await again.waitFor(attemptWith({ status: "rejected" }));
    expect(again.attempts().map((a) => a.messageId)).not.toContain("l-1");
  });

  test("sends a per-second rate frame counting attempts by status", async () => {
    server = await startAdminServer();
    const live = await watch(server);
    await server.post(
      "/v1/batch",
      { batch: [track("c-1"), track("c-2"), { type: "track", userId: "x" }] },
      { "x-write-key": server.keys.server },
    );
    await live.waitFor((f) => {
      if (f.event !== "rate") return false;
      const { counts } = JSON.parse(f.data);
      return counts.accepted === 2 && counts.rejected === 1;
    }, 3000);
  });
});

describe("POST /admin/api/live/ticket", () => {
  test("a ticket opens the stream once, without the token in the URL", async () => {
    server = await startAdminServer();
    const res = await fetch(`${server.url}/admin/api/live/ticket`, {
      method: "POST",
      headers: ADMIN,
    });
    expect(res.status).toBe(200);
    const { ticket, expiresAt } = (await res.json()) as { ticket: string; expiresAt: string };
    expect(Date.parse(expiresAt)).toBeGreaterThan(Date.now());
    const live = await watch(server, `?ticket=${ticket}`, {});
    await server.post("/v1/track", track("t-1"), { "x-write-key": server.keys.server });
    await live.waitFor(attemptWith({ messageId: "t-1" }));
    const reused = await fetch(`${server.url}/admin/api/live?ticket=${ticket}`);
    expect(reused.status).toBe(401);
    expect(await reused.json()).toEqual({ error: "missing or wrong admin token" });
    const made = await fetch(`${server.url}/admin/api/live?ticket=made-up`);
    expect(made.status).toBe(401);
    const noAuth = await fetch(`${server.url}/admin/api/live/ticket`, { method: "POST" });
    expect(noAuth.status).toBe(401);
  });
});

describe("slow live clients", () => {
  test("a client that stops reading is dropped and ingest goes on at full speed", async () => {
    server = await startAdminServer({ web: { rateLimit: { eventsPerSecond: 1e6, burst: 1e6 } } });
    const s = server;
    const socket = connect(s.port, "127.0.0.1");
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    socket.write(
      `GET /admin/api/live HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nAuthorization: ${ADMIN.authorization}\r\n\r\n`,
    );
    socket.pause(); // reads nothing from now on
    socket.on("error", () => {});
    const healthy = await watch(s);
    const liveClients = async () => {
      const text = await (await fetch(`${s.url}/metrics`)).text();
      const value = (state: string) =>
        Number(new RegExp(`sluice_live_clients\\{state="${state}"\\} (\\d+)`).exec(text)?.[1]);
      return { connected: value("connected"), dropped: value("dropped") };
    };
    expect(await liveClients()).toEqual({ connected: 2, dropped: 0 });

    // Big events fill the stalled client's socket and then its 256 KB buffer.
    const batch = (n: number) =>
      Array.from({ length: 100 }, (_, i) =>
        track(`s-${n}-${i}`, { event: `E ${"x".repeat(200)}`, userId: `u-${"y".repeat(200)}` }),
      );
    const timings: number[] = [];
    let n = 0;
    for (; n < 300; n++) {
      const started = performance.now();
      const res = await s.post("/v1/batch", { batch: batch(n) }, { "x-write-key": s.keys.server });
      expect(res.status).toBe(200);
      timings.push(performance.now() - started);
      if (n % 10 === 9 && (await liveClients()).dropped === 1) break;
    }
    expect(await liveClients()).toEqual({ connected: 1, dropped: 1 });
    // The client that kept reading got everything.
    await healthy.waitFor(attemptWith({ messageId: `s-${n}-99` }));
    // Ingest did not wait for the stalled client: the slowest request stayed quick.
    timings.sort((a, b) => a - b);
    expect(timings[Math.floor(timings.length * 0.9)]!).toBeLessThan(500);
    // Once it reads again, the dropped client finds its stream ended, with the reason.
    let received = "";
    const ended = new Promise<void>((resolve) =>
      socket.on("data", (chunk) => {
        received += chunk.toString("latin1");
        if (received.endsWith("\r\n0\r\n\r\n")) resolve();
      }),
    );
    socket.resume();
    await ended;
    expect(received).toContain("event: dropped");
    socket.destroy();
  }, 60_000);
});

describe("a live client's stream", () => {
  test("frames published together reach the socket as one chunk, in order", async () => {
    const { LiveHub } = await import("../../src/admin/live/hub.ts");
    const hub = new LiveHub();
    const sub = hub.subscribe({});
    const reader = sub.stream.getReader();
    const decoder = new TextDecoder();
    expect(decoder.decode((await reader.read()).value)).toBe("retry: 2000\n\n");
    for (let i = 1; i <= 50; i++) {
      hub.publish({ status: "accepted", sourceId: "web", keyId: "k", messageId: `c-${i}` });
    }
    const { value } = await reader.read();
    const text = decoder.decode(value);
    const ids = [...text.matchAll(/"messageId":"(c-\d+)"/g)].map((m) => m[1]);
    expect(ids).toEqual(Array.from({ length: 50 }, (_, i) => `c-${i + 1}`));
    hub.close();
  });
});
