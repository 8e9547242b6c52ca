import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  cleanedAfterEach,
  exitCode,
  freePort,
  type RunningCli,
  segmentFiles,
  startCli,
  startedPort,
} from "../support/process.ts";
import {
  makeTestConfig,
  runCli,
  type SpawnedServer,
  spawnServer,
  storedEvents,
} from "../support/server.ts";

// SPEC 2: environment overrides PORT, SLUICE_DATA_DIR, SLUICE_LOG_LEVEL; relative paths
// in the config are relative to the config file's folder, environment variables are not.

const { dirs, procs } = cleanedAfterEach();

function tempDir() {
  const dir = mkdtempSync(join(tmpdir(), "sluice-env-"));
  dirs.push(dir);
  return dir;
}

function setup(opts: Parameters<typeof makeTestConfig>[0] = {}) {
  const made = makeTestConfig(opts);
  dirs.push(made.dir);
  return made;
}

function track(url: string, key: string, messageId: string) {
  return fetch(`${url}/v1/track`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-write-key": key },
    body: JSON.stringify({ event: "Env Checked", userId: "u1", messageId }),
  });
}

async function stop(p: SpawnedServer | RunningCli) {
  p.proc.kill("SIGTERM");
  expect(await exitCode(p.proc)).toBe(0);
}

test("PORT overrides the configured port", async () => {
  const made = setup({ config: { server: { port: 1, host: "127.0.0.1", dataDir: "./data" } } });
  const port = freePort();
  const s = await spawnServer(made.configFile, { PORT: String(port) });
  procs.push(s);
  expect(s.port).toBe(port);
  expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
  await stop(s);
});

test("SLUICE_DATA_DIR overrides dataDir; a relative one resolves against the cwd", async () => {
  const made = setup();
  const elsewhere = tempDir();
  const env = { SLUICE_DATA_DIR: join(elsewhere, "abs") };
  const s = await spawnServer(made.configFile, env);
  procs.push(s);
  expect((await track(s.url, made.keys.server, "abs-1")).status).toBe(200);
  await stop(s);
  expect((await storedEvents(join(elsewhere, "abs"))).map((e) => e.messageId)).toEqual(["abs-1"]);
  expect(existsSync(made.dataDir)).toBe(false);
  // The CLI honours it too.
  const tail = await runCli(["log", "tail", "--config", made.configFile], env);
  expect(tail.stdout).toContain('"messageId":"abs-1"');

  const cwd = tempDir();
  const rel = startCli(["serve", "--config", made.configFile], {
    cwd,
    env: { SLUICE_DATA_DIR: "rel-data", SLUICE_LOG_LEVEL: "info" },
  });
  procs.push(rel);
  const port = await startedPort(rel);
  expect((await track(`http://127.0.0.1:${port}`, made.keys.server, "rel-1")).status).toBe(200);
  await stop(rel);
  expect((await storedEvents(join(cwd, "rel-data"))).map((e) => e.messageId)).toEqual(["rel-1"]);
  expect(existsSync(made.dataDir)).toBe(false);
}, 15_000);

test("SLUICE_LOG_LEVEL overrides the configured level", async () => {
  // The file says error; the harness starts it with SLUICE_LOG_LEVEL=info and waits
  // for the info line "sluice started", which only the override lets through.
  const made = setup({
    config: {
      logger: { level: "error" },
      server: { port: 0, host: "127.0.0.1", dataDir: "./data" },
    },
  });
  const info = await spawnServer(made.configFile, { SLUICE_LOG_LEVEL: "info" }, 5_000);
  procs.push(info);
  await stop(info);
  expect(info.output()).toContain('"msg":"shutting down"');

  // At warn, a warning shows but info lines do not.
  const port = freePort();
  const plain = setup({
    web: { writeKeys: [{ id: "wk_plain", type: "server", key: "wk_plain:dev-secret-1" }] },
  });
  const warn = startCli(["serve", "--config", plain.configFile], {
    env: { SLUICE_LOG_LEVEL: "warn", PORT: String(port) },
  });
  procs.push(warn);
  await warn.waitFor(/"level":40[^\n]*write key wk_plain is in plaintext/);
  let health = 0;
  for (let i = 0; i < 200 && health !== 200; i++) {
    health = await fetch(`http://127.0.0.1:${port}/health`).then(
      (r) => r.status,
      () => 0,
    );
    if (health !== 200) await Bun.sleep(25);
  }
  expect(health).toBe(200);
  expect((await track(`http://127.0.0.1:${port}`, "wk_plain:dev-secret-1", "w-1")).status).toBe(
    200,
  );
  await stop(warn);
  expect(warn.output()).not.toContain('"level":30');
  expect(warn.output()).not.toContain("sluice started");
  expect(warn.output()).not.toContain("dev-secret-1");
}, 15_000);

test("invalid PORT or SLUICE_LOG_LEVEL values are config errors (exit 2)", async () => {
  const made = setup();
  const port = await runCli(["check", "--config", made.configFile], { PORT: "eighty" });
  expect(port.code).toBe(2);
  expect(port.stderr).toContain("$PORT: must be an integer port");
  const level = await runCli(["check", "--config", made.configFile], { SLUICE_LOG_LEVEL: "loud" });
  expect(level.code).toBe(2);
  expect(level.stderr).toContain("$SLUICE_LOG_LEVEL");
  // Empty variables count as unset.
  const empty = await runCli(["check", "--config", made.configFile], {
    PORT: "",
    SLUICE_LOG_LEVEL: "",
    SLUICE_DATA_DIR: "",
  });
  expect(empty.code).toBe(0);
});

test("a relative dataDir resolves against the config file's folder, not the cwd", async () => {
  const made = setup({
    config: { server: { port: 0, host: "127.0.0.1", dataDir: "./nested/data" } },
  });
  const cwd = tempDir();
  const env = { SLUICE_LOG_LEVEL: "info", SLUICE_DATA_DIR: "" };
  const serve = startCli(["serve", "--config", made.configFile], { cwd, env });
  procs.push(serve);
  const port = await startedPort(serve);
  expect((await track(`http://127.0.0.1:${port}`, made.keys.server, "nested-1")).status).toBe(200);
  await stop(serve);

  expect(segmentFiles(join(made.dir, "nested", "data")).length).toBeGreaterThan(0);
  expect(readdirSync(cwd)).toEqual([]);
  // The CLI, run from elsewhere and finding the config through SLUICE_CONFIG, reads the same log.
  const tail = await runCli(["log", "tail"], { ...env, SLUICE_CONFIG: made.configFile }, cwd);
  expect(tail.code).toBe(0);
  expect(tail.stdout).toContain('"messageId":"nested-1"');
  expect(readdirSync(cwd)).toEqual([]);
}, 15_000);
