import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { ALLOCATOR_ENV } from "../../src/allocator-env.ts";
import { cleanedAfterEach, exitCode } from "../support/process.ts";
import { makeTestConfig, runCli } from "../support/server.ts";

// `sluice serve` started without its allocator settings re-executes itself with them
// (execve: the same process), and never overrides a value the user set.

const { dirs, spawn } = cleanedAfterEach();

function environ(pid: number): Record<string, string> {
  const raw = readFileSync(`/proc/${pid}/environ`, "utf8");
  return Object.fromEntries(
    raw
      .split("\0")
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
  );
}

function unset(): Record<string, string> {
  // The test runner's own environment may hold them; the server must start without.
  for (const k of Object.keys(ALLOCATOR_ENV)) delete process.env[k];
  delete process.env.SLUICE_ALLOCATOR_ENV;
  return {};
}

test.skipIf(process.platform !== "linux")(
  "serve started without the allocator settings runs with them, in the same process",
  async () => {
    const made = makeTestConfig();
    dirs.push(made.dir);
    const s = await spawn(made.configFile, unset());
    // The process the parent started is the one that serves, with the variables.
    const health = await fetch(`${s.url}/health`);
    expect(health.status).toBe(200);
    const env = environ(s.proc.pid);
    for (const [k, v] of Object.entries(ALLOCATOR_ENV)) expect(env[k]).toBe(v);
    // Signals and the exit code are the process's own: SIGTERM stops it with 0.
    s.proc.kill("SIGTERM");
    expect(await exitCode(s.proc, 15_000)).toBe(0);
  },
);

test.skipIf(process.platform !== "linux")("a value the user set is kept", async () => {
  const made = makeTestConfig();
  dirs.push(made.dir);
  unset();
  const own = Object.fromEntries(Object.keys(ALLOCATOR_ENV).map((k) => [k, "1"]));
  const s = await spawn(made.configFile, own);
  const env = environ(s.proc.pid);
  for (const k of Object.keys(ALLOCATOR_ENV)) expect(env[k]).toBe("1");
  expect(env.SLUICE_ALLOCATOR_ENV).toBeUndefined();
});

test("exit codes are the same: --version 0, serve with a bad option 2 (after its re-exec)", async () => {
  unset();
  const r = await runCli(["--version"]);
  expect(r).toMatchObject({ code: 0, stdout: "0.1.0\n" });
  const bad = await runCli(["serve", "--no-such-option"]);
  expect(bad.code).toBe(2);
});
