import { expect, test } from "bun:test";
import { Elysia, t } from "elysia";
import pino from "pino";
import { ERROR_CODES, SluiceError, StorageError } from "../../src/errors.ts";
import { FunctionTimeoutError } from "../../src/functions/errors.ts";
import { ERROR_STATUS, errorHandler } from "../../src/http/errors.ts";

// The one error mapper, on a small Elysia app of its own: each error to its status
// and body, internal ones masked, and one log line each with the route pattern.

function appWith(lifecycle = { shuttingDown: false }) {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: "debug" },
    { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) },
  );
  let next: unknown;
  const app = new Elysia()
    .onError(errorHandler({ logger, lifecycle }))
    .post("/throw/:what", () => {
      throw next;
    })
    .get("/bad-answer", () => ({ ok: "yes" }) as unknown as { ok: boolean }, {
      response: { 200: t.Object({ ok: t.Boolean() }) },
    })
    .get("/item/:id", ({ params }) => params.id, { params: t.Object({ id: t.Numeric() }) });
  const call = async (path: string, error?: unknown, method = "POST") => {
    next = error;
    const res = await app.handle(new Request(`http://localhost${path}`, { method }));
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  return { call, lines };
}

test("every error code maps to its status with {error} and its details", async () => {
  const { call, lines } = appWith();
  for (const code of ERROR_CODES) {
    const res = await call("/throw/x", new SluiceError(code, `because ${code}`, { extra: 1 }));
    expect(res).toEqual({
      status: ERROR_STATUS[code],
      body: { error: `because ${code}`, extra: 1 },
    });
  }
  expect(lines.every((l) => l.route === "/throw/:what" && !("path" in l))).toBe(true);
});

test("a function timeout is a 504 naming the function", async () => {
  const { call } = appWith();
  expect(await call("/throw/x", new FunctionTimeoutError("slow", 300))).toEqual({
    status: 504,
    body: { error: "function slow timed out after 300 ms", functionId: "slow" },
  });
});

test("internal errors are masked, logged once with the id and the stack", async () => {
  const lifecycle = { shuttingDown: false };
  const { call, lines } = appWith(lifecycle);
  const storage = await call("/throw/x", new StorageError(new Error("disk on fire")));
  expect(storage.status).toBe(500); // storage that cannot write: SPEC 3's 500, the client retries
  expect(storage.body.error).toMatch(/^error# [0-9a-f]{6}: internal error$/);
  const id = String(storage.body.error).slice(7, 13);
  const line = lines.find((l) => l.errorId === id)!;
  expect(line).toMatchObject({ level: 50, route: "/throw/:what", status: 500 });
  expect(JSON.stringify(line.err)).toContain("disk on fire");
  expect(JSON.stringify(storage.body)).not.toContain("disk");

  lifecycle.shuttingDown = true;
  expect((await call("/throw/x", new StorageError(new Error("closed")))).status).toBe(503);
  expect((await call("/throw/x", new TypeError("a bug"))).status).toBe(500);
});

test("an answer that breaks its own schema is our bug: 500, not the client's 400", async () => {
  const { call } = appWith();
  const res = await call("/bad-answer", undefined, "GET");
  expect(res.status).toBe(500);
  expect(res.body.error).toMatch(/internal error$/);
});

test("a parameter that fails its schema is a 400 naming it, without echoing the value", async () => {
  const { call } = appWith();
  const res = await call("/item/not-a-number-SECRET", undefined, "GET");
  expect(res).toEqual({ status: 400, body: { error: "invalid params: id" } });
  expect((await call("/nowhere", undefined, "GET")).status).toBe(404);
});
