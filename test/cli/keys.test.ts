import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hashWriteKey } from "../../src/auth/keys.ts";
import { loadConfig } from "../../src/config/load.ts";
import { runCli } from "../support/server.ts";

// SPEC 10: `sluice keys create --source ID --type browser|server` prints the key once
// and records its hash (in place: comments and layout kept); `keys list` shows ids,
// types and sources, never secrets; `keys revoke --id ID` removes a key.

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A temp dir with a config made by `sluice init`, and the two keys it printed. */
async function initDir() {
  const dir = mkdtempSync(join(tmpdir(), "sluice-keys-"));
  dirs.push(dir);
  const init = await runCli(["init"], { SLUICE_CONFIG: join(dir, "sluice.yaml") }, dir);
  expect(init.code).toBe(0);
  const keys = [...init.stdout.matchAll(/(?:browser|server) key: +(\S+)/g)].map((m) => m[1]!);
  expect(keys).toHaveLength(2);
  return { dir, file: join(dir, "sluice.yaml"), keys };
}

const keyIds = (file: string) =>
  loadConfig(file, {}).config.sources.flatMap((s) =>
    s.writeKeys.map((k) => ({ source: s.id, id: k.id, type: k.type, hash: k.hash })),
  );

test("keys list: ids, types, sources; never a key or a hash", async () => {
  const { file, keys } = await initDir();
  const table = await runCli(["keys", "list", "--config", file]);
  expect(table.code).toBe(0);
  const rows = table.stdout.trim().split("\n");
  expect(rows[0]).toMatch(/^SOURCE\s+KEY ID\s+TYPE\s+STORED AS$/);
  expect(rows.slice(1)).toEqual([
    expect.stringMatching(/^default\s+browser_[0-9a-f]{8}\s+browser\s+hash$/),
    expect.stringMatching(/^default\s+server_[0-9a-f]{8}\s+server\s+hash$/),
  ]);
  const json = await runCli(["keys", "list", "--json", "--config", file]);
  const listed = JSON.parse(json.stdout);
  expect(listed.map((r: { type: string }) => r.type)).toEqual(["browser", "server"]);
  for (const out of [table.stdout, json.stdout]) {
    for (const k of keys) {
      expect(out).not.toContain(k.split(":")[1]!);
      expect(out).not.toContain(hashWriteKey(k).slice(7));
    }
  }
  const missing = await runCli(["keys", "list", "--source", "nope", "--config", file]);
  expect(missing.code).toBe(2);
});

test("keys create: prints the key once, appends only its hash, keeps the file's comments", async () => {
  const { dir, file } = await initDir();
  const before = readFileSync(file, "utf8");
  const mode = statSync(file).mode & 0o777;
  // As a user would: in the config's folder, no --config.
  const res = await runCli(
    ["keys", "create", "--source", "default", "--type", "server", "--id", "ci_backend"],
    { SLUICE_CONFIG: "" },
    dir,
  );
  expect(res.code).toBe(0);
  const key = /^ {2}(ci_backend:\S+)$/m.exec(res.stdout)?.[1];
  expect(key).toBeDefined();
  expect(res.stdout).toContain("shown only now");

  const after = readFileSync(file, "utf8");
  expect(after).not.toContain(key!);
  expect(after).toContain(hashWriteKey(key!));
  // Exactly one line more, every old line (comments included) kept in order.
  const added = after.split("\n").filter((l) => !before.split("\n").includes(l));
  expect(added).toEqual([
    `      - { id: ci_backend, type: server, hash: "${hashWriteKey(key!)}" }`,
  ]);
  expect(after.split("\n").filter((l) => l !== added[0])).toEqual(before.split("\n"));
  expect(statSync(file).mode & 0o777).toBe(mode);
  expect(keyIds(file).at(-1)).toEqual({
    source: "default",
    id: "ci_backend",
    type: "server",
    hash: hashWriteKey(key!),
  });
  expect((await runCli(["check", "--config", file])).code).toBe(0);

  // A generated id, and --quiet for scripts: the key alone.
  const quiet = await runCli([
    "keys",
    "create",
    "--source",
    "default",
    "--type",
    "browser",
    "--quiet",
    "--config",
    file,
  ]);
  expect(quiet.code).toBe(0);
  expect(quiet.stdout).toMatch(/^browser_[0-9a-f]{8}:[A-Za-z0-9_-]{43}\n$/);
  expect(keyIds(file).at(-1)?.hash).toBe(hashWriteKey(quiet.stdout.trim()));
});

test("keys create refuses bad input and leaves the file alone", async () => {
  const { file } = await initDir();
  const before = readFileSync(file, "utf8");
  const cases = [
    ["--source", "nope", "--type", "server"],
    ["--source", "default", "--type", "desktop"],
    ["--type", "server"],
    ["--source", "default", "--type", "server", "--id", "bad id!"],
    ["--source", "default", "--type", "server", "--id", keyIds(file)[0]!.id],
  ];
  for (const args of cases) {
    const res = await runCli(["keys", "create", ...args, "--config", file]);
    expect({ args, code: res.code }).toEqual({ args, code: 2 });
    expect(res.stderr.length).toBeGreaterThan(0);
  }
  expect(readFileSync(file, "utf8")).toBe(before);
});

test("keys create on a file it cannot edit safely prints the line to add (exit 3)", async () => {
  const { dir } = await initDir();
  const file = join(dir, "aliased.yaml");
  // Both sources share one list through an alias: adding to it would give the key to both.
  const text = `sources:
  - id: web
    writeKeys: &none []
  - id: other
    writeKeys: *none
`;
  writeFileSync(file, text);
  const res = await runCli([
    "keys",
    "create",
    "--source",
    "web",
    "--type",
    "server",
    "--id",
    "b",
    "--config",
    file,
  ]);
  expect(res.code).toBe(3);
  expect(readFileSync(file, "utf8")).toBe(text);
  const key = /^ {2}(b:\S+)$/m.exec(res.stdout)?.[1];
  expect(key).toBeDefined();
  expect(res.stdout).toContain(`  - { id: b, type: server, hash: "${hashWriteKey(key!)}" }`);
  expect(res.stdout).toContain("writeKeys list of source web");
});

test("keys revoke removes the key's line; unknown ids are refused", async () => {
  const { file } = await initDir();
  const [browser, server] = keyIds(file);
  const before = readFileSync(file, "utf8");
  const res = await runCli(["keys", "revoke", "--id", server!.id, "--config", file]);
  expect(res.code).toBe(0);
  expect(res.stdout).toContain(`Revoked key ${server!.id} of source default`);
  const after = readFileSync(file, "utf8");
  expect(before.split("\n").filter((l) => !after.split("\n").includes(l))).toEqual([
    expect.stringContaining(server!.id),
  ]);
  expect(keyIds(file).map((k) => k.id)).toEqual([browser!.id]);
  expect(after).toContain("# Only hashes are stored.");

  const again = await runCli(["keys", "revoke", "--id", server!.id, "--config", file]);
  expect(again.code).toBe(2);
  expect(again.stderr).toContain("unknown key id");
  expect((await runCli(["keys", "revoke", "--config", file])).code).toBe(2);

  // The last key of the source: the list becomes empty, and the file stays valid.
  expect((await runCli(["keys", "revoke", "--id", browser!.id, "--config", file])).code).toBe(0);
  expect(keyIds(file)).toEqual([]);
  expect((await runCli(["check", "--config", file])).code).toBe(0);
});

test("keys on an invalid config: exit 2 with the problems", async () => {
  const { file } = await initDir();
  writeFileSync(file, "sources:\n  - id: web\n    rateLimit: { burst: 0 }\n");
  const res = await runCli(["keys", "list", "--config", file]);
  expect(res.code).toBe(2);
  expect(res.stderr).toContain(
    "sources[0].rateLimit.burst (line 3, column 18): must be at least 1",
  );
});
