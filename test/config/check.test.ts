import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hashWriteKey } from "../../src/auth/keys.ts";
import { exitCode, startCli } from "../support/process.ts";
import { makeTestConfig, runCli } from "../support/server.ts";

// SPEC 2: the config is validated at start; an invalid file stops the start with every
// problem listed (path and reason), exit code 2. `sluice check` validates it alone.

const dir = mkdtempSync(join(tmpdir(), "sluice-check-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function writeConfig(name: string, text: string) {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

const hash = hashWriteKey("wk1:some-secret-value");

test("check on a valid config exits 0 and says what it found", async () => {
  const made = makeTestConfig();
  try {
    const res = await runCli(["check", "--config", made.configFile]);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`config ${made.configFile} is valid: 2 source(s)`);
  } finally {
    rmSync(made.dir, { recursive: true, force: true });
  }
});

test("check on a YAML config with a plaintext key exits 0 with a warning", async () => {
  const file = writeConfig(
    "plain.yaml",
    `# a comment, as YAML allows
server:
  port: 9000
sources:
  - id: web
    writeKeys:
      - { id: wk1, type: server, key: "wk1:plaintext-secret" }
`,
  );
  const res = await runCli(["check", "--config", file]);
  expect(res.code).toBe(0);
  expect(res.stdout).toContain("warning: source web: write key wk1 is in plaintext");
  expect(res.stdout).not.toContain("plaintext-secret");
});

const invalid = `server: { port: 70000, dataDir: ./data }
colour: blue
sources:
  - id: web
    writeKeys:
      - { id: wk1, hash: "${hash}" }
`;

test("check on an invalid config exits 2 and lists every problem with its path", async () => {
  const file = writeConfig("invalid.yaml", invalid);
  const res = await runCli(["check", "--config", file]);
  expect(res.code).toBe(2);
  expect(res.stdout).toBe("");
  expect(res.stderr).toContain(`invalid config ${file}`);
  // All three, not just the first one found.
  expect(res.stderr).toMatch(/^ {2}\/server\/port: .*65535/m);
  expect(res.stderr).toMatch(/^ {2}\/colour: Unexpected property/m);
  expect(res.stderr).toMatch(/^ {2}\/sources\/0\/writeKeys\/0\/type: Expected required property/m);
});

test("cross-field problems are listed too: unknown source, duplicate ids, hash and key both given", async () => {
  const file = writeConfig(
    "cross.yaml",
    JSON.stringify({
      sources: [
        { id: "web", writeKeys: [{ id: "k1", type: "server", hash, key: "k1:secret-value" }] },
        { id: "web", writeKeys: [{ id: "k1", type: "browser", hash }] },
      ],
      connections: [
        {
          id: "c1",
          source: "nowhere",
          destination: { type: "file", path: "./out.ndjson" },
          functions: ["missing"],
        },
      ],
    }),
  );
  const res = await runCli(["check", "--config", file]);
  expect(res.code).toBe(2);
  for (const line of [
    "/sources/0/writeKeys/0: needs exactly one of hash or key",
    "/sources/1/id: duplicate id",
    "/sources/1/writeKeys/0/id: duplicate key id",
    "/connections/0/source: unknown source nowhere",
    "/connections/0/functions/0: unknown function missing",
  ]) {
    expect(res.stderr).toContain(line);
  }
  // The problems name paths, never the secret that was in the file.
  expect(res.stderr).not.toContain("secret-value");
});

test("invalid YAML exits 2 with a reason", async () => {
  const file = writeConfig("broken.yaml", "server: [unclosed\n  port: 1\n");
  const res = await runCli(["check", "--config", file]);
  expect(res.code).toBe(2);
  expect(res.stderr).toContain(`invalid config ${file}`);
  expect(res.stderr).toContain("not valid YAML");
});

test("a missing config file exits 2", async () => {
  const res = await runCli(["check", "--config", join(dir, "nope.yaml")]);
  expect(res.code).toBe(2);
  expect(res.stderr).toContain("file not found");
});

test("serve on an invalid config does not start: exit 2 with every problem listed", async () => {
  const file = writeConfig("invalid-serve.yaml", invalid);
  const serve = startCli(["serve", "--config", file]);
  expect(await exitCode(serve.proc)).toBe(2);
  expect(serve.output()).toContain("/colour: Unexpected property");
  expect(serve.output()).toContain("/server/port:");
  expect(serve.output()).toContain("/sources/0/writeKeys/0/type:");
  expect(serve.output()).not.toContain("sluice started");
}, 15_000);
