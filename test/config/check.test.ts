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
  // Each with its path, and its line and column in the file.
  expect(res.stderr).toContain("\n  server.port (line 1, column 11): must be at most 65535\n");
  expect(res.stderr).toMatch(
    /^ {2}colour \(line 2, column 1\): unknown field; the fields here are: server, /m,
  );
  expect(res.stderr).toContain(
    "\n  sources[0].writeKeys[0].type (line 6, column 9): is required: one of browser, server\n",
  );
});

test("cross-field problems are listed too: unknown source, duplicate ids, hash and key both given", async () => {
  const file = writeConfig(
    "cross.yaml",
    JSON.stringify(
      {
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
      },
      null,
      2,
    ),
  );
  const res = await runCli(["check", "--config", file]);
  expect(res.code).toBe(2);
  for (const line of [
    "sources[0].writeKeys[0] (line 6, column 9): needs exactly one of hash or key",
    "sources[1].id (line 15, column 7): duplicate id",
    "sources[1].writeKeys[0].id (line 18, column 11): duplicate key id",
    "connections[0].source (line 28, column 7): unknown source nowhere (sources: web)",
    "connections[0].functions[0] (line 34, column 9): unknown function missing",
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
  // The line and column of the mistake, not only that there is one.
  expect(res.stderr).toContain("\n  line 1, column 10: not valid YAML: ");
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
  expect(serve.output()).toContain("colour (line 2, column 1): unknown field");
  expect(serve.output()).toContain("server.port (line 1, column 11):");
  expect(serve.output()).toContain("sources[0].writeKeys[0].type (line 6, column 9):");
  expect(serve.output()).not.toContain("sluice started");
}, 15_000);

test("a wrong destination says what its type needs, not 'Expected union value'", async () => {
  const file = writeConfig(
    "destinations.yaml",
    `sources: [{ id: web }]
connections:
  - { id: c1, source: web, destination: { type: webhook } }
  - id: c2
    source: web
    destination:
      type: file
      url: http://example.com/
  - { id: c3, source: web, destination: { type: kafka } }
  - { id: c4, source: web, destination: { type: postgres, url: "http://x" }, start: middle }
`,
  );
  const res = await runCli(["check", "--config", file]);
  expect(res.code).toBe(2);
  const err = res.stderr;
  expect(err).not.toContain("union");
  expect(err).toContain(
    "connections[0].destination.url (line 3, column 28): is required: a webhook destination " +
      "needs url (an http:// or https:// URL); may have headers,",
  );
  expect(err).toContain(
    "connections[1].destination.path (line 6, column 5): is required: a file destination needs path;",
  );
  expect(err).toContain(
    "connections[1].destination.url (line 8, column 7): unknown field of a file destination; " +
      "the fields here are: type, path, maxBytes,",
  );
  // An unknown type lists every type with what it needs.
  expect(err).toContain("connections[2].destination.type (line 9, column 43): must be one of:\n");
  expect(err).toMatch(/^ {6}webhook needs url \(an http:\/\/ or https:\/\/ URL\);/m);
  expect(err).toMatch(/^ {6}file needs path;/m);
  expect(err).toContain(
    "connections[3].destination.url (line 10, column 59): must be a postgres:// URL",
  );
  expect(err).toContain("connections[3].start (line 10, column 78): must be one of oldest, now");
});

test("a value of the wrong kind is reported, not replaced by the default", async () => {
  // `sources: {}` once read as "no sources" and `limits: []` as the default limits.
  const file = writeConfig("kinds.json", `{\n  "sources": {},\n  "limits": [1]\n}\n`);
  const res = await runCli(["check", "--config", file]);
  expect(res.code).toBe(2);
  expect(res.stderr).toContain("sources (line 2, column 3): must be a list");
  expect(res.stderr).toContain("limits (line 3, column 3): must be a mapping (key: value)");
});

test("YAML mistakes name their line; check warns about a key given twice", async () => {
  const indent = await runCli([
    "check",
    "--config",
    writeConfig("indent.yaml", "server:\n  port: 1\n port: 2\n"),
  ]);
  expect(indent.code).toBe(2);
  expect(indent.stderr).toContain("line 3, column 1: not valid YAML: ");
  // A duplicate key silently drops the first (here a whole list of sources), as YAML
  // readers do; check says where.
  const dup = await runCli([
    "check",
    "--config",
    writeConfig("dup.yaml", "sources: [{ id: a }]\nconnections: []\nsources: []\n"),
  ]);
  expect(dup.code).toBe(0);
  expect(dup.stdout).toContain("0 source(s)");
  expect(dup.stdout).toContain(
    "warning: line 3, column 1: a key given twice here: the last one counts",
  );
});

test("check with log.backend nats: says where events and state live (no credentials), warns without Redis state, names a bad server URL", async () => {
  const sources = `sources:
  - id: web
    writeKeys:
      - { id: wk1, type: server, hash: "${hash}" }
`;
  const alone = writeConfig(
    "nats.yaml",
    `log: { backend: nats, servers: ["nats://sluice:s3cret@nats-1:4222", "nats-2:4223"], replicas: 3 }
${sources}`,
  );
  const res = await runCli(["check", "--config", alone]);
  expect(res.code).toBe(0);
  expect(res.stdout).toContain(
    "log: nats stream SLUICE (subjects sluice.events.<sourceId>, 3 replica(s), duplicate window 120 s) on nats-1:4222, nats-2:4223; state: file",
  );
  expect(res.stdout).toContain("warning: log.backend is nats but state.backend is file");
  expect(res.stdout).not.toContain("s3cret");

  const shared = writeConfig(
    "nats-redis.yaml",
    `log: { backend: nats }
state: { backend: redis, url: "redis://127.0.0.1:6379" }
${sources}`,
  );
  const ok = await runCli(["check", "--config", shared]);
  expect(ok.code).toBe(0);
  expect(ok.stdout).toContain("on 127.0.0.1:4222; state: redis (key prefix sluice)");
  expect(ok.stdout).not.toContain("warning");

  const bad = writeConfig(
    "nats-bad.yaml",
    `log: { backend: nats, servers: ["http://nats:4222"], duplicateWindowSeconds: 30 }
${sources}`,
  );
  const refused = await runCli(["check", "--config", bad]);
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain("log.duplicateWindowSeconds");
  expect(refused.stderr).toContain("must be at least 120");

  const url = writeConfig(
    "nats-url.yaml",
    `log: { backend: nats, servers: ["nats://ok:4222", "http://nats:4222"] }
${sources}`,
  );
  const wrongUrl = await runCli(["check", "--config", url]);
  expect(wrongUrl.code).toBe(2);
  expect(wrongUrl.stderr).toContain("log.servers[1]");
  expect(wrongUrl.stderr).toContain("must be nats://host:port");
});
