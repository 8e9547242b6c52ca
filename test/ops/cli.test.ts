import { afterAll, beforeAll, expect, test } from "bun:test";
import { COMMANDS as TABLE } from "../../src/cli/commands.ts";
import { freePort } from "../support/process.ts";
import { runCli, startTestServer, type TestServer } from "../support/server.ts";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(() => s.cleanup());

// Every command of the table, and the groups (keys, log) their names start with.
const COMMANDS = [
  ...new Set(
    TABLE.filter((c) => !c.hidden && c.name !== "help").flatMap((c) => [
      c.name.split(" ")[0]!,
      c.name,
    ]),
  ),
].map((name) => name.split(" "));

test("sluice --help lists every command; each command has its own --help", async () => {
  const top = await runCli(["--help"]);
  expect(top.code).toBe(0);
  for (const words of COMMANDS) expect(top.stdout).toContain(`  ${words.join(" ")}`);
  const helps = await Promise.all(COMMANDS.map((w) => runCli([...w, "--help"])));
  helps.forEach((res, i) => {
    const words = COMMANDS[i]!.join(" ");
    expect({ words, code: res.code }).toEqual({ words, code: 0 });
    expect(res.stdout).toStartWith(`Usage: sluice ${words}`);
  });
  // `sluice help keys create` says the same as `sluice keys create --help`.
  const keysCreate = COMMANDS.findIndex((w) => w.join(" ") === "keys create");
  expect((await runCli(["help", "keys", "create"])).stdout).toBe(helps[keysCreate]!.stdout);
  expect((await runCli(["--version"])).stdout.trim()).toBe("0.1.0");
  // No command is a usage error: the overview goes to stderr.
  const none = await runCli([]);
  expect(none.code).toBe(2);
  expect(none.stdout).toBe("");
  expect(none.stderr).toContain("Usage: sluice <command>");
}, 60_000); // one `sluice … --help` process per command: slow on a loaded machine

test("sluice health: 0 when /health answers, 1 when nothing listens", async () => {
  const up = await runCli(["health", "--url", `${s.url}/health`]);
  expect(up.code).toBe(0);
  // The default URL takes the port from $PORT, as in the Docker image.
  expect((await runCli(["health"], { PORT: String(s.port) })).code).toBe(0);
  const down = await runCli(["health", "--url", `http://127.0.0.1:${freePort()}/health`]);
  expect(down.code).toBe(1);
}, 15_000);
