import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { startTestServer, type TestServer } from "../support/server.ts";

// functionRuntime.user runs the function host as another user, so user code cannot read
// what only the server's user can (the config file, the data dir). Switching users
// needs root, as CI and these machines run the tests.
// The other user must also be able to run the checkout (bun and src/): true of these
// machines' /work, not of a checkout under a private home folder.
const asRoot = process.getuid?.() === 0 && othersCanRead(join(import.meta.dir, "..", ".."));

function othersCanRead(dir: string): boolean {
  for (let d = dir; ; d = dirname(d)) {
    if ((statSync(d).mode & 0o005) !== 0o005) return false;
    if (d === dirname(d)) return true;
  }
}

let shared: string;
let secret: string;
beforeAll(() => {
  // The function file must be readable by the other user; the secret only by root.
  shared = mkdtempSync(join(tmpdir(), "sluice-fn-"));
  chmodSync(shared, 0o755);
  writeFileSync(
    join(shared, "peek.js"),
    `export default async (event, ctx) => {
      try { event.read = (await Bun.file(ctx.props.SECRET).text()).trim(); }
      catch (err) { event.read = err.code ?? String(err); }
      event.uid = process.getuid();
    };`,
    { mode: 0o644 },
  );
  secret = join(shared, "secret.txt");
  writeFileSync(secret, "server-only\n", { mode: 0o600 });
});
afterAll(() => rmSync(shared, { recursive: true, force: true }));

async function peek(user: string | undefined) {
  const s: TestServer = await startTestServer({
    config: {
      functionRuntime: { workers: 1, ...(user ? { user } : {}) },
      functions: [{ id: "peek", file: join(shared, "peek.js") }],
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
    return ((await res.json()) as { events: { read: string; uid: number }[] }).events[0]!;
  } finally {
    await s.cleanup();
  }
}

test.if(asRoot)("by default user code runs as the server's user and reads its files", async () => {
  expect(await peek(undefined)).toMatchObject({ read: "server-only", uid: 0 });
});

test.if(asRoot)("with functionRuntime.user it cannot read the server's files", async () => {
  const seen = await peek("nobody");
  expect(seen.read).toBe("EACCES");
  expect(seen.uid).not.toBe(0);
});

test("an unknown functionRuntime.user stops the start with a clear error", async () => {
  await expect(peek("no-such-user-here")).rejects.toThrow(
    "functionRuntime.user: no such user no-such-user-here",
  );
});
