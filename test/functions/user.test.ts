import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lookupUser } from "../../src/functions/sandbox/identity.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

// SPEC 7: as root, sluice runs functions as a dedicated unprivileged user (sluice-fn,
// created if missing) or functionRuntime.user; never as root. The function's files
// are copied for it, so its folder need not be readable by that user.
const asRoot = process.getuid?.() === 0;

let shared: string;
let secret: string;
beforeAll(() => {
  // A private folder (0700, root's), as a config dir usually is.
  shared = mkdtempSync(join(tmpdir(), "sluice-fn-test-"));
  writeFileSync(
    join(shared, "peek.js"),
    `export default async (event, ctx) => {
      try { event.read = (await Bun.file(ctx.props.SECRET).text()).trim(); }
      catch (err) { event.read = err.code ?? String(err); }
      event.uid = process.getuid();
      event.gid = process.getgid();
    };`,
  );
  secret = join(shared, "secret.txt");
  writeFileSync(secret, "server-only\n", { mode: 0o600 });
});
afterAll(() => rmSync(shared, { recursive: true, force: true }));

async function peek(user: string | undefined, file = join(shared, "peek.js")) {
  const s: TestServer = await startTestServer({
    config: {
      functionRuntime: { workers: 1, ...(user ? { user } : {}) },
      functions: [{ id: "peek", file }],
      connections: [
        {
          id: "con_peek",
          source: "web",
          destination: { type: "device" },
          functions: ["peek"],
          env: { SECRET: secret },
        },
      ],
    },
  });
  try {
    const res = await s.post(
      "/api/funcs/con_peek",
      { type: "track", event: "e", userId: "u" },
      { "x-write-key": s.keys.server },
    );
    expect(res.status).toBe(200);
    return ((await res.json()) as { events: { read: string; uid: number; gid: number }[] })
      .events[0]!;
  } finally {
    await s.cleanup();
  }
}

test.if(asRoot)(
  "as root, functions run as sluice-fn and cannot read the server's files",
  async () => {
    const seen = await peek(undefined);
    const user = lookupUser("sluice-fn");
    expect(user).toBeDefined();
    expect(seen).toMatchObject({ read: "EACCES", uid: user!.uid, gid: user!.gid });
    expect(seen.uid).not.toBe(0);
  },
);

test.if(asRoot)("functionRuntime.user runs them as another user, never as root", async () => {
  expect(await peek("nobody")).toMatchObject({ read: "EACCES", uid: 65534 });
  await expect(peek("root")).rejects.toThrow(
    "functionRuntime.user: functions must not run as root",
  );
});

test("an unknown functionRuntime.user stops the start with a clear error", async () => {
  const expected = asRoot
    ? "functionRuntime.user: no such user no-such-user-here"
    : "functionRuntime.user: switching to no-such-user-here needs the server to run as root";
  await expect(peek("no-such-user-here")).rejects.toThrow(expected);
});
