import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { matchAdminToken } from "../../src/admin/token.ts";
import { addAdminToken } from "../../src/config/edit.ts";
import { loadConfig } from "../../src/config/load.ts";
import { cleanedAfterEach } from "../support/process.ts";
import { BUN, MAIN, makeTestConfig } from "../support/server.ts";
import { waitFor } from "../support/wait.ts";

const { dirs, spawn } = cleanedAfterEach();
const entry = { id: "adm_1", hash: `sha256:${"a".repeat(64)}` };

describe("addAdminToken keeps the file's comments and layout", () => {
  const cases: [string, string][] = [
    ["no admin section", "# top\nsources: []\n"],
    ["empty file", ""],
    ["admin: {}", "sources: []\nadmin: {}\n"],
    [
      "a block list",
      `admin:\n  tokens:\n    - { id: old, hash: "sha256:${"b".repeat(64)}" }\n# end\n`,
    ],
    ["a flow list", "admin: { tokens: [] } # inline\n"],
    ["JSON", '{\n  "sources": []\n}\n'],
    [
      "JSON with a token",
      `{ "admin": { "tokens": [{ "id": "old", "hash": "sha256:${"c".repeat(64)}" }] } }`,
    ],
  ];
  for (const [name, text] of cases) {
    test(name, () => {
      const edited = addAdminToken(text, entry);
      expect(edited).toBeDefined();
      const parsed = Bun.YAML.parse(edited!) as { admin: { tokens: { id: string }[] } };
      expect(parsed.admin.tokens.at(-1)).toEqual(entry);
      for (const line of text.split("\n").filter((l) => l.startsWith("#"))) {
        expect(edited).toContain(line);
      }
    });
  }
});

describe("sluice admin token create", () => {
  test("prints the token once, writes only its hash, and the server accepts it", async () => {
    const made = makeTestConfig();
    dirs.push(made.dir);
    const run = Bun.spawnSync([BUN, MAIN, "admin", "token", "create", "--config", made.configFile]);
    expect(run.exitCode).toBe(0);
    const out = run.stdout.toString();
    const token = /^ {2}(adm_[0-9a-f]{8}:[\w-]{43})$/m.exec(out)?.[1];
    expect(token).toBeDefined();
    const file = readFileSync(made.configFile, "utf8");
    expect(file).not.toContain(token!.split(":")[1]!);
    const { config } = loadConfig(made.configFile);
    expect(matchAdminToken(config.admin.tokens, token!)?.id).toBe(token!.split(":")[0]!);

    const server = await spawn(made.configFile);
    const me = await fetch(`${server.url}/admin/api/me`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(me.status).toBe(200);
    const wrong = await fetch(`${server.url}/admin/api/me`, {
      headers: { authorization: `Bearer ${token}x` },
    });
    expect(wrong.status).toBe(401);
  });

  test("a token made while the server runs works after SIGHUP", async () => {
    const made = makeTestConfig();
    dirs.push(made.dir);
    const server = await spawn(made.configFile);
    const run = Bun.spawnSync([
      BUN,
      MAIN,
      "admin",
      "token",
      "create",
      "--quiet",
      "--config",
      made.configFile,
    ]);
    const token = run.stdout.toString().trim();
    const me = () =>
      fetch(`${server.url}/admin/api/me`, { headers: { authorization: `Bearer ${token}` } });
    // No token was configured: loopback is let in without one, and the token means nothing.
    expect((await me()).status).toBe(200);
    expect(((await (await me()).json()) as { via: string }).via).toBe("loopback");
    server.proc.kill("SIGHUP");
    await waitFor(() => server.output().includes("admin tokens:"), { what: "the reload line" });
    expect(((await (await me()).json()) as { via: string }).via).toBe("token");
    expect((await fetch(`${server.url}/admin/api/me`)).status).toBe(401);
  });

  test("--quiet prints the token alone; --id names it; a taken id is refused", () => {
    const made = makeTestConfig();
    dirs.push(made.dir);
    const create = (...extra: string[]) =>
      Bun.spawnSync([BUN, MAIN, "admin", "token", "create", "--config", made.configFile, ...extra]);
    const quiet = create("--id", "ci", "--quiet");
    expect(quiet.exitCode).toBe(0);
    expect(quiet.stdout.toString()).toMatch(/^ci:[\w-]{43}\n$/);
    const again = create("--id", "ci");
    expect(again.exitCode).toBe(2);
    expect(again.stderr.toString()).toContain("already exists");
    const list = Bun.spawnSync([BUN, MAIN, "admin", "token", "list", "--config", made.configFile]);
    expect(list.stdout.toString().trim()).toBe("ci");
    const usage = Bun.spawnSync([BUN, MAIN, "admin", "nonsense", "--config", made.configFile]);
    expect(usage.exitCode).toBe(2);
  });

  test("a file that cannot be edited: the token is printed with the lines to add, exit 3", () => {
    const made = makeTestConfig();
    dirs.push(made.dir);
    const weird = join(made.dir, "weird.yaml");
    // tokens given as an alias of another list defeat a safe text edit.
    writeFileSync(weird, "sources: [{ id: web, writeKeys: &none [] }]\nadmin: { tokens: *none }\n");
    const run = Bun.spawnSync([BUN, MAIN, "admin", "token", "create", "--config", weird]);
    expect(run.exitCode).toBe(3);
    expect(run.stdout.toString()).toContain("admin:\n  tokens:\n    - { id:");
    expect(readFileSync(weird, "utf8")).not.toContain("adm_");
  });
});
